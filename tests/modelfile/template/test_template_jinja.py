"""Jinja chat templates: dialect detection, Hugging Face conventions, the sandbox, errors."""

from __future__ import annotations

import pytest

from ingot.modelfile import Message
from ingot.modelfile.template import TemplateError, compile_template, render_generate, render_prompt

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] "
          "+ '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
          "{% endif %}")
LLAMA3 = ("{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
          "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim "
          "+ '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
          "{{ content }}{% endfor %}{% if add_generation_prompt %}"
          "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
MISTRAL = ("{{ bos_token }}{% for message in messages %}\n"
           "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n"
           "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}\n"
           "{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
           "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% endif %}{% endfor %}")
USER = [{"role": "user", "content": "Hello"}]


def test_jinja_is_detected_by_its_blocks() -> None:
    assert compile_template(CHATML).dialect == "jinja"
    assert compile_template("{{ .Prompt }}").dialect == "go"


def test_expression_only_jinja_is_detected_when_go_cannot_parse_it() -> None:
    template = compile_template("{{ messages[0]['content'] }}!")
    assert template.dialect == "jinja"
    assert render_prompt(template, messages=USER) == "Hello!"


def test_a_broken_go_template_reports_the_go_error() -> None:
    with pytest.raises(TemplateError, match='function "upper" not defined'):
        compile_template("{{ .Prompt | upper }}")


def test_chatml_with_generation_prompt() -> None:
    text = render_prompt(compile_template(CHATML), messages=USER, default_system="Be brief.")
    assert text == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
                    "<|im_start|>assistant\n")


def test_llama3_uses_bos_token() -> None:
    text = render_prompt(compile_template(LLAMA3), messages=USER, bos_token="<|begin_of_text|>")
    assert text == ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
                    "<|start_header_id|>assistant<|end_header_id|>\n\n")


def test_mistral_uses_bos_and_eos_and_modelfile_messages() -> None:
    text = render_prompt(compile_template(MISTRAL), messages=USER, bos_token="<s>", eos_token="</s>",
                         modelfile_messages=(Message("user", "2+2?"), Message("assistant", "4")))
    assert text == "<s>[INST] 2+2? [/INST]4</s>[INST] Hello [/INST]"


def test_raise_exception_becomes_a_template_error_with_its_line() -> None:
    template = compile_template(MISTRAL)
    with pytest.raises(TemplateError) as caught:
        render_prompt(template, messages=[{"role": "assistant", "content": "first"}])
    err = caught.value
    assert "Conversation roles must alternate" in err.message
    assert err.line == 3
    assert "raise_exception" in (err.source_line or "")


def test_syntax_error_points_at_the_line() -> None:
    with pytest.raises(TemplateError) as caught:
        compile_template("line one\n{% for m in messages %}\n{{ m['content'] }}\n", name="chat.jinja")
    err = caught.value
    assert err.filename == "chat.jinja"
    assert "Jinja syntax error" in err.message
    assert err.line >= 2


def test_sandbox_blocks_mutation_and_private_attributes() -> None:
    mutating = compile_template("{% set _ = messages.append(1) %}x")
    with pytest.raises(TemplateError, match="sandbox"):
        render_prompt(mutating, messages=USER)
    sneaky = compile_template("{{ messages.__class__.__mro__ }}{% if true %}{% endif %}")
    with pytest.raises(TemplateError):
        render_prompt(sneaky, messages=USER)


def test_tools_and_tojson_keep_unicode_and_order() -> None:
    template = compile_template("{% if tools %}{{ tools | tojson }}{% endif %}|{{ messages[-1].content }}")
    tools = [{"type": "function", "function": {"name": "météo", "parameters": {"b": 1, "a": 2}}}]
    text = render_prompt(template, messages=USER, tools=tools)
    assert text == ('[{"type": "function", "function": {"name": "météo", "parameters": {"b": 1, "a": 2}}}]'
                    "|Hello")
    assert render_prompt(template, messages=USER) == "|Hello"


def test_tool_calls_and_results_in_hf_shape() -> None:
    template = compile_template(
        "{% for m in messages %}{% if m.tool_calls %}{% for c in m.tool_calls %}"
        "{{ c.function.name }}({{ c.function.arguments | tojson }}){% endfor %}"
        "{% elif m.role == 'tool' %}[{{ m.name }}={{ m.content }}]{% endif %}{% endfor %}")
    messages = [{"role": "assistant", "content": "",
                 "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1}}}]},
                {"role": "tool", "content": "ok", "tool_name": "f"}]
    assert render_prompt(template, messages=messages) == 'f({"x": 1})[f=ok]'


def test_enable_thinking_only_when_set() -> None:
    template = compile_template("{% if enable_thinking is defined %}{{ enable_thinking }}{% else %}unset{% endif %}")
    assert render_prompt(template, messages=USER) == "unset"
    assert render_prompt(template, messages=USER, think=False) == "False"


def test_strftime_now_is_available() -> None:
    template = compile_template("{{ strftime_now('%Y') | length }}")
    assert render_prompt(template, messages=USER) == "4"


def test_gguf_chat_template_is_used_when_there_is_no_template() -> None:
    assert render_prompt(None, messages=USER, gguf_chat_template=CHATML) == \
        "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"
    go = compile_template("[{{ .Prompt }}]")
    assert render_prompt(go, messages=USER, gguf_chat_template=CHATML) == "[Hello]"
    assert render_generate(None, "Hello", gguf_chat_template=CHATML) == \
        "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"
