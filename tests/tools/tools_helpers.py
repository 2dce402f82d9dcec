"""Templates and tools the tool-calling tests share."""

from __future__ import annotations

from typing import Any

# ChatML with Hermes-style tools, the way Qwen 2.5 style Ollama templates write them.
HERMES_TEMPLATE = """\
{{- if or .System .Tools }}<|im_start|>system
{{ if .System }}{{ .System }}{{ else }}You are a helpful assistant.{{ end }}
{{- if .Tools }}

You may call functions. Their signatures are within <tools></tools> XML tags:
<tools>
{{- range .Tools }}
{"type": "function", "function": {{ .Function }}}
{{- end }}
</tools>

To call one, return a JSON object with the function name and arguments within <tool_call></tool_call> XML tags:
<tool_call>
{"name": <function-name>, "arguments": <args-json-object>}
</tool_call>
{{- end }}<|im_end|>
{{ end }}
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 -}}
{{- if eq .Role "user" }}<|im_start|>user
{{ .Content }}<|im_end|>
{{ else if eq .Role "assistant" }}<|im_start|>assistant
{{ if .Content }}{{ .Content }}
{{- else if .ToolCalls }}<tool_call>
{{ range .ToolCalls }}{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}
{{ end }}</tool_call>
{{- end }}{{ if not $last }}<|im_end|>
{{ end }}
{{- else if eq .Role "tool" }}<|im_start|>user
<tool_response>
{{ .Content }}
</tool_response><|im_end|>
{{ end }}
{{- if and (ne .Role "assistant") $last }}<|im_start|>assistant
{{ end }}
{{- end }}"""

# ChatML whose calls are bare JSON objects with "parameters", as Llama 3.x templates write them.
JSON_TEMPLATE = """\
<|im_start|>system
You are a helpful assistant.
{{- if .Tools }} To call a function, answer with {"name": function name, "parameters": arguments}. Functions:
{{- range .Tools }}
{{ . }}
{{- end }}
{{- end }}<|im_end|>
{{ range .Messages }}
{{- if eq .Role "tool" }}<|im_start|>user
Result: {{ .Content }}<|im_end|>
{{ else }}<|im_start|>{{ .Role }}
{{ if .ToolCalls }}{{ range .ToolCalls }}{"name": "{{ .Function.Name }}", "parameters": {{ .Function.Arguments }}}{{ end }}
{{- else }}{{ .Content }}{{ end }}<|im_end|>
{{ end }}
{{- end }}<|im_start|>assistant
"""

WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city, e.g. Paris"}},
            "required": ["city"],
        },
    },
}
TIME: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Get the current time in a time zone",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string", "enum": ["UTC", "Europe/Paris", "Asia/Tokyo"]}},
            "required": ["zone"],
        },
    },
}
QUESTION = "What is the weather like in Paris today?"
