"""Model references: parsing, defaults, normalization, display, validation errors, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingot.registry.errors import ReferenceError
from ingot.registry.home import default_registry
from ingot.registry.reference import Reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "host", "namespace", "name", "tag", "digest", "full", "short"),
    [
        ("mistral", None, "library", "mistral", "latest", None, "library/mistral:latest", "mistral"),
        ("Mistral:7B", None, "library", "mistral", "7B", None, "library/mistral:7B", "mistral:7B"),
        ("me/model:v1.2", None, "me", "model", "v1.2", None, "me/model:v1.2", "me/model:v1.2"),
        ("library/m:latest", None, "library", "m", "latest", None, "library/m:latest", "m"),
        ("localhost:5000/m", "localhost:5000", "library", "m", "latest", None, "localhost:5000/library/m:latest",
         "localhost:5000/m"),
        ("localhost/m", "localhost", "library", "m", "latest", None, "localhost/library/m:latest", "localhost/m"),
        ("Reg.Example.com/ns/m:Tag", "reg.example.com", "ns", "m", "Tag", None, "reg.example.com/ns/m:Tag",
         "reg.example.com/ns/m:Tag"),
        ("registry/ns/m", "registry", "ns", "m", "latest", None, "registry/ns/m:latest", "registry/ns/m"),
        ("registry/library/m", "registry", "library", "m", "latest", None, "registry/library/m:latest",
         "registry/library/m"),
        ("https://reg.io/x", "reg.io", "library", "x", "latest", None, "reg.io/library/x:latest", "reg.io/x"),
        ("[::1]:5000/m", "[::1]:5000", "library", "m", "latest", None, "[::1]:5000/library/m:latest", "[::1]:5000/m"),
        (f"m@{DIGEST}", None, "library", "m", "latest", DIGEST, f"library/m:latest@{DIGEST}", f"m@{DIGEST}"),
        (f"h.io/n/m:t@{DIGEST}", "h.io", "n", "m", "t", DIGEST, f"h.io/n/m:t@{DIGEST}", f"h.io/n/m:t@{DIGEST}"),
        ("a.b-c_d__e--f", None, "library", "a.b-c_d__e--f", "latest", None, "library/a.b-c_d__e--f:latest",
         "a.b-c_d__e--f"),
    ],
)
def test_parse_fills_defaults_and_normalizes(
    text: str, host: str | None, namespace: str, name: str, tag: str, digest: str | None, full: str, short: str
) -> None:
    ref = Reference.parse(text)
    assert (ref.host, ref.namespace, ref.name, ref.tag, ref.digest) == (host, namespace, name, tag, digest)
    assert str(ref) == full
    assert ref.short == short
    assert Reference.parse(full) == ref
    assert Reference.parse(short) == ref


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty model reference"),
        ("a b", "whitespace"),
        ("a//b", "empty namespace"),
        ("/b", "empty namespace"),
        ("h.io//b", "empty namespace"),
        ("a/b/c/d", "at most 3"),
        ("m:", "empty tag"),
        (":t", "empty name"),
        ("m:-x", "invalid tag '-x'"),
        ("m:.x", "invalid tag"),
        ("m:a:b", "more than one ':'"),
        ("m_", "invalid name 'm_'"),
        ("-m", "invalid name"),
        ("m..x", "invalid name"),
        ("ns./m", "invalid host"),
        ("bad_ns!/m", "invalid namespace"),
        ("a.b/ns_/m", "invalid namespace 'ns_'"),
        ("bad_host/ns/m", "invalid host 'bad_host'"),
        ("h.io:0/m", "invalid port 0"),
        ("h.io:99999/m", "invalid port 99999"),
        ("m@sha256:abc", "expected 64 lowercase hex"),
        ("m@md5:" + "a" * 32, "unsupported digest algorithm 'md5'"),
        ("m@" + DIGEST + "@" + DIGEST, "more than one '@'"),
        ("@" + DIGEST, "needs a model name"),
        ("x/localhost/m", "'localhost' cannot be a namespace"),
        ("m" * 81, "name is 81 characters long; at most 80"),
        ("ns" * 41 + "/m", "namespace is 82 characters long; at most 80"),
        ("m:" + "t" * 129, "tag is 129 characters long; at most 128"),
    ],
)
def test_invalid_references_say_which_part_is_wrong(text: str, expected: str) -> None:
    with pytest.raises(ReferenceError) as info:
        Reference.parse(text)
    assert expected in str(info.value)
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


def test_length_limits_are_inclusive() -> None:
    assert Reference.parse("m" * 80).name == "m" * 80
    assert Reference.parse("m:" + "t" * 128).tag == "t" * 128
    assert Reference.parse("n" * 80 + "/m").namespace == "n" * 80


def test_direct_construction_validates_and_normalizes() -> None:
    assert Reference(name="Model", namespace="Me", host="Reg.IO").tagged == "reg.io/me/model:latest"
    with pytest.raises(ReferenceError, match="invalid name"):
        Reference(name="bad name")
    with pytest.raises(ReferenceError, match="expected 64"):
        Reference(name="m", digest="sha256:1")


def test_derived_references() -> None:
    ref = Reference.parse(f"me/m:v1@{DIGEST}")
    assert ref.with_tag("v2") == Reference.parse("me/m:v2")
    assert ref.without_digest() == Reference.parse("me/m:v1")
    assert ref.repository == "me/m"
    assert ref.is_local
    assert not ref.with_host("localhost:5000").is_local
    with pytest.raises(ReferenceError, match="invalid tag"):
        ref.with_tag("-bad")


def test_for_remote_needs_a_host_or_the_default_registry() -> None:
    local = Reference.parse("me/m")
    assert local.for_remote("localhost:5000") == Reference.parse("localhost:5000/me/m")
    hosted = Reference.parse("reg.io/me/m")
    assert hosted.for_remote("localhost:5000") == hosted
    with pytest.raises(ReferenceError, match="INGOT_REGISTRY"):
        local.for_remote(None)
    assert default_registry({"INGOT_REGISTRY": " localhost:5000 "}) == "localhost:5000"
    assert default_registry({}) is None


def test_is_valid() -> None:
    assert Reference.is_valid("me/m:v1")
    assert not Reference.is_valid("me/m:")


_component = st.from_regex(r"[a-z0-9]{1,6}(?:(?:[._]|__|-{1,2})[a-z0-9]{1,6}){0,3}", fullmatch=True)
_namespace = st.from_regex(r"[a-z0-9]{1,6}(?:(?:_|__|-{1,2})[a-z0-9]{1,6}){0,3}", fullmatch=True).filter(
    lambda s: s != "localhost"
)
_label = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
_host = st.builds(
    lambda labels, port: ".".join(labels) + (f":{port}" if port else ""),
    st.lists(_label, min_size=1, max_size=3),
    st.one_of(st.none(), st.integers(1, 65535)),
)
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,20}", fullmatch=True)
_digest = st.one_of(st.none(), st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True))


@settings(max_examples=300, deadline=None)
@given(
    host=st.one_of(st.none(), _host),
    namespace=_namespace,
    name=_component,
    tag=_tag,
    digest=_digest,
)
def test_round_trip_of_valid_references(
    host: str | None, namespace: str, name: str, tag: str, digest: str | None
) -> None:
    ref = Reference(name=name, namespace=namespace, tag=tag, host=host, digest=digest)
    assert Reference.parse(str(ref)) == ref
    assert Reference.parse(ref.short) == ref
    assert len(ref.short) <= len(str(ref))


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="abcAB09._-:/@ \u00e9", max_size=40))
def test_any_text_parses_to_a_stable_reference_or_raises_reference_error(text: str) -> None:
    try:
        ref = Reference.parse(text)
    except ReferenceError:
        return
    assert Reference.parse(str(ref)) == ref
    assert Reference.parse(ref.short) == ref
