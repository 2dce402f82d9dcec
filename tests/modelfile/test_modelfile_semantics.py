"""What a parsed Modelfile means: typed parameters, accumulation, repeats, warnings."""

from __future__ import annotations

import pytest

from ingot.modelfile import DEPRECATED_PARAMETERS, Diagnostic, Message, Modelfile, parse


def test_typed_result_of_a_full_file() -> None:
    m = parse(
        "FROM ./model.gguf\n"
        "ADAPTER ./lora-a.gguf\n"
        "ADAPTER ./lora-b.gguf\n"
        "PARAMETER num_ctx 8192\n"
        "PARAMETER temperature 0.2\n"
        "PARAMETER use_mmap false\n"
        "PARAMETER stop <|im_end|>\n"
        "PARAMETER stop \"<|im_start|>\"\n"
        "PARAMETER seed -1\n"
        "TEMPLATE {{ .Prompt }}\n"
        "SYSTEM Be brief.\n"
        "MESSAGE user Is Toronto in Canada?\n"
        "MESSAGE assistant yes\n"
        "LICENSE MIT\n"
        'LICENSE """Apache-2.0\nsecond licence text"""\n'
        "REQUIRES 0.14.0\n"
    )
    assert m == Modelfile(
        base="./model.gguf",
        parameters={"num_ctx": 8192, "temperature": 0.2, "use_mmap": False,
                    "stop": ("<|im_end|>", "<|im_start|>"), "seed": -1},
        template="{{ .Prompt }}",
        system="Be brief.",
        adapters=("./lora-a.gguf", "./lora-b.gguf"),
        licenses=("MIT", "Apache-2.0\nsecond licence text"),
        messages=(Message("user", "Is Toronto in Canada?"), Message("assistant", "yes")),
        requires="0.14.0",
    )
    assert m.warnings == ()
    assert type(m.parameters["num_ctx"]) is int
    assert type(m.parameters["temperature"]) is float
    assert m.parameters["use_mmap"] is False


def test_optional_fields_default_to_unset() -> None:
    m = parse("FROM x\n")
    assert (m.template, m.system, m.requires) == (None, None, None)
    assert (m.parameters, m.adapters, m.licenses, m.messages) == ({}, (), (), ())


def test_stop_accumulates_in_order_across_the_file() -> None:
    m = parse("FROM x\nPARAMETER stop a\nSYSTEM s\nPARAMETER stop b\nPARAMETER STOP c\nPARAMETER stop a\n")
    assert m.parameters["stop"] == ("a", "b", "c", "a")
    assert m.warnings == ()


def test_repeated_parameter_keeps_the_last_value_with_a_warning() -> None:
    m = parse("FROM x\nPARAMETER temperature 0.1\nPARAMETER top_k 5\nPARAMETER temperature 0.9\n",
              filename="Modelfile")
    assert m.parameters == {"temperature": 0.9, "top_k": 5}
    assert m.warnings == (
        Diagnostic("Modelfile", 4, 11,
                   "parameter 'temperature' is set again (first on line 2); the last value wins"),
    )
    assert str(m.warnings[0]).startswith("Modelfile:4:11: warning: parameter 'temperature'")


@pytest.mark.parametrize("name", sorted(DEPRECATED_PARAMETERS))
def test_deprecated_parameters_warn_and_are_dropped(name: str) -> None:
    m = parse(f"FROM x\nPARAMETER {name} 1\nPARAMETER top_k 3\n")
    assert m.parameters == {"top_k": 3}
    assert len(m.warnings) == 1
    warning = m.warnings[0]
    assert (warning.line, warning.column) == (2, 11)
    assert f"'{name}' is deprecated" in warning.message


def test_the_deprecated_list_is_the_one_the_issue_names() -> None:
    assert DEPRECATED_PARAMETERS == {
        "mirostat", "mirostat_eta", "mirostat_tau", "penalize_newline", "low_vram", "f16_kv",
        "logits_all", "vocab_only", "use_mlock", "numa", "num_gqa", "rope_frequency_base",
        "rope_frequency_scale", "tfs_z",
    }


def test_parameter_names_are_case_insensitive() -> None:
    assert parse("FROM x\nPARAMETER Temperature 1\nPARAMETER NUM_CTX 2048\n").parameters == {
        "temperature": 1.0, "num_ctx": 2048}


def test_template_and_system_keep_the_last_value_with_a_warning() -> None:
    m = parse("FROM x\nSYSTEM one\nTEMPLATE t1\nSYSTEM two\nTEMPLATE t2\n")
    assert (m.system, m.template) == ("two", "t2")
    assert [(w.line, w.message) for w in m.warnings] == [
        (4, "SYSTEM is given again (first on line 2); the last one wins"),
        (5, "TEMPLATE is given again (first on line 3); the last one wins"),
    ]


def test_requires_drops_a_leading_v_and_keeps_the_last() -> None:
    m = parse("FROM x\nREQUIRES v0.5.0\nREQUIRES 0.14.0-rc1+build.5\n")
    assert m.requires == "0.14.0-rc1+build.5"
    assert len(m.warnings) == 1


@pytest.mark.parametrize("version", ["0.14.0", "v1", "1.2", "10.20.30", "1.0.0-alpha.1"])
def test_requires_accepts_go_semver(version: str) -> None:
    assert parse(f"FROM x\nREQUIRES {version}\n").requires == version.lstrip("v")


def test_adapters_licenses_and_messages_accumulate_in_order() -> None:
    m = parse("FROM x\nLICENSE a\nADAPTER one\nMESSAGE user q\nLICENSE b\nADAPTER two\nMESSAGE assistant r\n")
    assert m.adapters == ("one", "two")
    assert m.licenses == ("a", "b")
    assert m.messages == (Message("user", "q"), Message("assistant", "r"))


def test_message_roles_are_ollamas_three_in_any_case() -> None:
    m = parse("FROM x\nMESSAGE System s\nMESSAGE USER u\nMESSAGE assistant a\nMESSAGE user\n")
    assert m.messages == (Message("system", "s"), Message("user", "u"), Message("assistant", "a"),
                          Message("user", ""))


def test_from_may_come_after_other_instructions() -> None:
    assert parse("PARAMETER top_k 1\nFROM late\n").base == "late"


def test_warnings_do_not_take_part_in_equality_or_hashing() -> None:
    quiet = parse("FROM x\nSYSTEM s\n")
    noisy = parse("FROM x\nPARAMETER mirostat 1\nSYSTEM s\n")
    assert noisy.warnings and not quiet.warnings
    assert quiet == noisy
    assert hash(quiet) == hash(noisy)


def test_modelfile_stores_tuples_and_a_private_parameter_dict() -> None:
    parameters = {"stop": ["a", "b"]}
    m = Modelfile(base="x", parameters=parameters, adapters=["p"], messages=[Message("user", "u")])
    assert m.parameters == {"stop": ("a", "b")}
    assert m.adapters == ("p",)
    assert m.messages == (Message("user", "u"),)
    parameters["top_k"] = 1
    assert "top_k" not in m.parameters
    assert Modelfile(base="x", parameters={"stop": ()}) == Modelfile(base="x")
