"""The PARAMETER table and `coerce_parameter`, as the engine and daemon use it for request options."""

from __future__ import annotations

import pickle

import pytest

from ingot.modelfile import PARAMETERS, ParameterError, ParameterSpec, coerce_parameter, lookup_parameter
from ingot.modelfile.parameters import render_parameter

GUIDE_TYPES = {
    "num_ctx": "int", "num_batch": "int", "num_gpu": "int", "main_gpu": "int", "use_mmap": "bool",
    "num_thread": "int", "num_keep": "int", "seed": "int", "num_predict": "int", "top_k": "int",
    "top_p": "float", "min_p": "float", "typical_p": "float", "repeat_last_n": "int",
    "temperature": "float", "repeat_penalty": "float", "presence_penalty": "float",
    "frequency_penalty": "float", "stop": "string-list",
}


def test_table_matches_the_guide() -> None:
    assert {name: spec.type for name, spec in PARAMETERS.items()} == GUIDE_TYPES
    assert all(isinstance(spec, ParameterSpec) and spec.name == name for name, spec in PARAMETERS.items())


def test_ollama_defaults() -> None:
    defaults = {name: spec.default for name, spec in PARAMETERS.items()}
    assert defaults["num_batch"] == 512
    assert defaults["num_gpu"] == -1
    assert defaults["num_keep"] == 4
    assert defaults["num_predict"] == -1
    assert defaults["top_k"] == 40
    assert defaults["top_p"] == 0.9
    assert defaults["typical_p"] == 1.0
    assert defaults["repeat_last_n"] == 64
    assert defaults["temperature"] == 0.8
    assert defaults["repeat_penalty"] == 1.0
    assert defaults["stop"] == ()


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_every_default_is_valid_and_documented(name: str) -> None:
    spec = PARAMETERS[name]
    assert spec.help.endswith(".")
    if spec.default is not None and spec.default != ():
        assert coerce_parameter(name, spec.default) == spec.default
    if spec.minimum is not None and spec.maximum is not None:
        assert spec.minimum < spec.maximum


def test_table_cannot_be_changed() -> None:
    with pytest.raises(TypeError):
        PARAMETERS["bogus"] = PARAMETERS["seed"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("num_ctx", "4096", 4096),
        ("num_ctx", " 4096 ", 4096),
        ("num_ctx", 4096, 4096),
        ("num_ctx", 4096.0, 4096),  # JSON / protobuf Struct numbers are doubles
        ("num_ctx", "+8", 8),
        ("num_gpu", "-1", -1),
        ("seed", "4294967295", 4294967295),
        ("num_predict", "-2", -2),
        ("top_p", "1", 1.0),
        ("top_p", "0", 0.0),
        ("top_p", 1, 1.0),
        ("top_p", ".5", 0.5),
        ("min_p", "5e-2", 0.05),
        ("temperature", "0.7", 0.7),
        ("temperature", 0.7, 0.7),
        ("presence_penalty", "-2", -2.0),
        ("use_mmap", "true", True),
        ("use_mmap", "False", False),
        ("use_mmap", "1", True),
        ("use_mmap", "f", False),
        ("use_mmap", True, True),
        ("stop", "</s>", ("</s>",)),
        ("stop", ["a", "b"], ("a", "b")),
        ("stop", ("a",), ("a",)),
        ("STOP", "x", ("x",)),
        ("Temperature", "1", 1.0),
    ],
)
def test_coerce_accepts_text_and_typed_values(name: str, value: object, expected: object) -> None:
    result = coerce_parameter(name, value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("name", "value", "kind", "words"),
    [
        ("num_ctx", "4k", "type", "whole number"),
        ("num_ctx", "4096.5", "type", "whole number"),
        ("num_ctx", 4096.5, "type", "whole number"),
        ("num_ctx", True, "type", "whole number"),
        ("num_ctx", "1_000", "type", "whole number"),
        ("num_ctx", 0, "range", "between 1 and"),
        ("num_ctx", 2**40, "range", "between 1 and"),
        ("num_batch", "0", "range", "between 1"),
        ("num_gpu", "-2", "range", "between -1"),
        ("seed", "-2", "range", "between -1"),
        ("top_k", "-1", "range", "between 0"),
        ("top_p", "1.01", "range", "between 0.0 and 1.0"),
        ("top_p", -0.1, "range", "between 0.0 and 1.0"),
        ("min_p", "2", "range", "between 0.0 and 1.0"),
        ("typical_p", "1.5", "range", "between 0.0 and 1.0"),
        ("temperature", "-1", "range", "between 0.0"),
        ("temperature", float("inf"), "type", "finite"),
        ("temperature", "nan", "type", "number"),
        ("temperature", "inf", "type", "number"),
        ("temperature", False, "type", "number"),
        ("temperature", None, "type", "number"),
        ("repeat_penalty", "-0.5", "range", "between 0.0"),
        ("frequency_penalty", "3", "range", "between -2.0 and 2.0"),
        ("use_mmap", "yes please", "type", "true or false"),
        ("use_mmap", 1, "type", "true or false"),
        ("stop", "", "range", "must not be empty"),
        ("stop", ["ok", ""], "range", "must not be empty"),
        ("stop", 5, "type", "string"),
        ("stop", ["ok", 5], "type", "string"),
        ("temprature", "1", "unknown", "unknown parameter 'temprature'"),
        ("mirostat", "1", "deprecated", "deprecated"),
        ("draft_num_predict", "4", "unsupported", "not supported"),
    ],
)
def test_coerce_rejects_with_an_error_naming_the_option(name: str, value: object, kind: str,
                                                        words: str) -> None:
    with pytest.raises(ParameterError) as caught:
        coerce_parameter(name, value)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.kind == kind
    assert words in str(error)
    assert name.lower() in str(error)


def test_unknown_parameter_suggests_the_closest_name() -> None:
    with pytest.raises(ParameterError) as caught:
        lookup_parameter("num_ctxx")
    assert caught.value.hint is not None and caught.value.hint.startswith("did you mean 'num_ctx'?")


def test_parameter_error_survives_pickling() -> None:
    with pytest.raises(ParameterError) as caught:
        coerce_parameter("top_p", 7)
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (copy.name, copy.kind, str(copy)) == ("top_p", "range", str(caught.value))


@pytest.mark.parametrize("value", [0.1, 1e-05, -0.0, 2.5e-310, 1.0, 1.9999999999999998, -1.5e-7])
def test_rendered_floats_read_back_exactly(value: float) -> None:
    assert coerce_parameter("presence_penalty", render_parameter(value)) == value


def test_rendered_values_read_back_for_every_type() -> None:
    for name, value in [("seed", 42), ("use_mmap", True), ("use_mmap", False), ("top_p", 0.25)]:
        assert coerce_parameter(name, render_parameter(value)) == value
