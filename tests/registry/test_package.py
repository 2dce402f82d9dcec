"""Packages: ModelPack layout, reproducible digests, FROM resolution and inheritance, load_package, crashes."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from lora_adapter import write_adapter

from ingot.modelfile import Message, Modelfile, format_modelfile, parse
from ingot.registry import mediatypes as mt
from ingot.registry.errors import ModelNotFoundError, PackageError
from ingot.registry.gguf_info import GGUFError
from ingot.registry.package import (
    TEMPLATE_FROM_GGUF,
    TEMPLATE_FROM_MODELFILE,
    TEMPLATE_NONE,
    build_package,
    format_param_size,
    load_package,
)
from ingot.registry.reference import Reference
from ingot.registry.store import Store
from ingot.registry.synthetic import SyntheticSpec, write_synthetic_gguf

CHAT_TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"

# The ModelPack config JSON schema (modelpack/model-spec schema/config-schema.json, v1),
# kept here so the test checks our config against the standard, not against itself.
MODELPACK_CONFIG_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "type": "object",
    "properties": {
        "descriptor": {"$ref": "#/$defs/ModelDescriptor"},
        "modelfs": {"$ref": "#/$defs/ModelFS"},
        "config": {"$ref": "#/$defs/ModelConfig"},
    },
    "additionalProperties": False,
    "required": ["descriptor", "config", "modelfs"],
    "$defs": {
        "ModelConfig": {
            "type": "object",
            "properties": {
                "architecture": {"type": "string"},
                "format": {"type": "string"},
                "paramSize": {"type": "string"},
                "precision": {"type": "string"},
                "quantization": {"type": "string"},
                "transformerConfig": {"type": "object"},
                "capabilities": {"type": "object"},
            },
            "additionalProperties": False,
        },
        "ModelDescriptor": {
            "type": "object",
            "properties": {
                "createdAt": {"type": "string", "format": "date-time"},
                "authors": {"type": "array", "items": {"type": "string"}},
                "family": {"type": "string"},
                "name": {"type": "string", "minLength": 1},
                "docURL": {"type": "string"},
                "sourceURL": {"type": "string"},
                "datasetsURL": {"type": "array", "items": {"type": "string"}},
                "version": {"type": "string"},
                "revision": {"type": "string"},
                "vendor": {"type": "string"},
                "licenses": {"type": "array", "items": {"type": "string"}},
                "title": {"type": "string"},
                "description": {"type": "string"},
            },
            "additionalProperties": False,
        },
        "ModelFS": {
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": ["layers"]},
                "diffIds": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            },
            "additionalProperties": False,
            "required": ["type", "diffIds"],
        },
    },
}


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    write_synthetic_gguf(folder / "plain.gguf", SyntheticSpec())
    write_synthetic_gguf(folder / "chat.gguf", SyntheticSpec(chat_template=CHAT_TEMPLATE, seed=1))
    write_adapter(folder / "lora.gguf")
    return folder


@pytest.fixture
def project(tmp_path: Path, weights_dir: Path) -> Path:
    """A project folder with copies of the weights (each test may hardlink and chmod its own)."""
    folder = tmp_path / "project"
    folder.mkdir()
    for name in ("plain.gguf", "chat.gguf", "lora.gguf"):
        (folder / name).write_bytes((weights_dir / name).read_bytes())
    return folder


def store_at(path: Path) -> Store:
    return Store(path / "models")


FULL_MODELFILE = '''\
FROM ./chat.gguf
PARAMETER temperature 0.7
PARAMETER num_ctx 1024
PARAMETER stop "<|end|>"
PARAMETER stop "User:"
SYSTEM """You are a terse assistant."""
MESSAGE user Hello
MESSAGE assistant Hi.
ADAPTER ./lora.gguf
LICENSE """MIT License

Permission is hereby granted..."""
LICENSE Apache-2.0
'''


def build(store: Store, text: str, folder: Path, name: str = "m", **kwargs: Any):
    modelfile = parse(text, filename=str(folder / "Modelfile"))
    return build_package(store, modelfile, folder, ref=Reference.parse(name), env=kwargs.pop("env", {}), **kwargs)


def blob_json(store: Store, digest: str) -> Any:
    return json.loads(store.blob_path(digest).read_bytes())


# ---------------------------------------------------------------------------
# format


def test_package_is_a_modelpack_artifact(tmp_path: Path, project: Path) -> None:
    store = store_at(tmp_path / "home")
    desc = build(store, FULL_MODELFILE, project)
    assert desc.media_type == mt.OCI_MANIFEST and desc.artifact_type == mt.MODEL_ARTIFACT
    raw = store.blob_path(desc.digest).read_bytes()
    manifest = json.loads(raw)
    assert raw == json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == mt.OCI_MANIFEST
    assert manifest["artifactType"] == mt.MODEL_ARTIFACT
    assert manifest["config"]["mediaType"] == mt.MODEL_CONFIG
    layers = manifest["layers"]
    # filepath: where a layer goes when extracted; title: its file name in a mount (an image volume).
    assert [(l["mediaType"], l["annotations"]) for l in layers] == [
        (mt.MODEL_WEIGHT_RAW, {mt.ANNOTATION_FILEPATH: "model.gguf", mt.ANNOTATION_TITLE: "model.gguf"}),
        (mt.INGOT_ADAPTER, {mt.ANNOTATION_FILEPATH: "adapters/adapter-1.gguf", mt.ANNOTATION_TITLE: "adapter-1.gguf"}),
        (mt.MODEL_DOC_RAW, {mt.ANNOTATION_FILEPATH: "LICENSE", mt.ANNOTATION_TITLE: "LICENSE"}),
        (mt.MODEL_DOC_RAW, {mt.ANNOTATION_FILEPATH: "LICENSE-2", mt.ANNOTATION_TITLE: "LICENSE-2"}),
        (mt.INGOT_MODELFILE, {mt.ANNOTATION_FILEPATH: "ingot-modelfile.json", mt.ANNOTATION_TITLE: "ingot-modelfile.json"}),
    ]
    assert store.blob_path(layers[0]["digest"]).read_bytes() == (project / "chat.gguf").read_bytes()
    assert store.blob_path(layers[3]["digest"]).read_bytes() == b"Apache-2.0"
    config = blob_json(store, manifest["config"]["digest"])
    jsonschema.validate(config, MODELPACK_CONFIG_SCHEMA)
    assert config["modelfs"] == {"type": "layers", "diffIds": [l["digest"] for l in layers]}
    assert config["config"] == {"architecture": "llama", "format": "gguf", "paramSize": "172.4K", "precision": "fp32"}
    assert config["descriptor"] == {"family": "llama", "name": "ingot-synthetic"}
    assert "annotations" not in manifest  # no clock, no options: nothing to annotate
    runtime = blob_json(store, layers[4]["digest"])
    assert runtime["templateSource"] == TEMPLATE_FROM_GGUF and runtime["template"] is None
    assert runtime["parameters"] == {"temperature": 0.7, "num_ctx": 1024, "stop": ["<|end|>", "User:"]}
    assert runtime["adapters"] == [layers[1]["digest"]]
    assert runtime["licenses"] == [layers[2]["digest"], layers[3]["digest"]]
    assert runtime["weights"] == layers[0]["digest"]
    # The canonical Modelfile is valid next to an extracted package: it names the package's own files.
    canonical = parse(runtime["modelfile"])
    assert canonical.base == "./model.gguf" and canonical.adapters == ("./adapters/adapter-1.gguf",)
    assert canonical.system == "You are a terse assistant."


def test_no_build_machine_path_enters_the_package(tmp_path: Path, project: Path) -> None:
    store = store_at(tmp_path / "home")
    desc = build(store, FULL_MODELFILE, project)
    manifest = blob_json(store, desc.digest)
    for digest in [desc.digest, manifest["config"]["digest"], manifest["layers"][-1]["digest"]]:
        text = store.blob_path(digest).read_text()
        assert str(tmp_path) not in text and "/tmp" not in text


def test_same_inputs_give_the_same_digest_anywhere(tmp_path: Path, project: Path, weights_dir: Path) -> None:
    first = build(store_at(tmp_path / "home1"), FULL_MODELFILE, project)
    again = build(store_at(tmp_path / "home1"), FULL_MODELFILE, project)
    assert again.digest == first.digest
    # Another home, another folder, another name, copied (not linked) files: same package.
    other = tmp_path / "elsewhere" / "deeper"
    other.mkdir(parents=True)
    for name in ("chat.gguf", "lora.gguf"):
        (other / name).write_bytes((weights_dir / name).read_bytes())
    moved = build(store_at(tmp_path / "home2"), FULL_MODELFILE, other, name="me/other:v9", link=False)
    assert moved.digest == first.digest
    # Any change of meaning changes the digest.
    changed = build(store_at(tmp_path / "home1"), FULL_MODELFILE.replace("0.7", "0.8"), project)
    assert changed.digest != first.digest


def test_source_date_epoch_and_annotations(tmp_path: Path, project: Path) -> None:
    store = store_at(tmp_path / "home")
    annotations = {
        mt.ANNOTATION_VERSION: "1.2.0",
        mt.ANNOTATION_REVISION: "abc123",
        mt.ANNOTATION_SOURCE: "https://example.com/m",
    }
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    desc = build(store, "FROM ./plain.gguf\n", project, annotations=annotations, env=env)
    manifest = blob_json(store, desc.digest)
    assert manifest["annotations"] == {**annotations, mt.ANNOTATION_CREATED: "2023-11-14T22:13:20Z"}
    config = blob_json(store, manifest["config"]["digest"])
    jsonschema.validate(config, MODELPACK_CONFIG_SCHEMA)
    assert config["descriptor"]["createdAt"] == "2023-11-14T22:13:20Z"
    assert config["descriptor"]["version"] == "1.2.0"
    assert config["descriptor"]["revision"] == "abc123"
    assert config["descriptor"]["sourceURL"] == "https://example.com/m"
    assert build(store, "FROM ./plain.gguf\n", project, annotations=annotations, env=env).digest == desc.digest
    with pytest.raises(PackageError, match="SOURCE_DATE_EPOCH"):
        build(store, "FROM ./plain.gguf\n", project, env={"SOURCE_DATE_EPOCH": "yesterday"})


@pytest.mark.parametrize(
    ("count", "expected"),
    [(172_416, "172.4K"), (999, "1K"), (1_000_000, "1M"), (6_738_415_616, "6.7B"), (70_000_000_000, "70B"), (12, "0K")],
)
def test_param_size(count: int, expected: str) -> None:
    assert format_param_size(count) == expected


# ---------------------------------------------------------------------------
# load


def test_load_package_gives_back_the_full_meaning(tmp_path: Path, project: Path) -> None:
    store = store_at(tmp_path / "home")
    desc = build(store, FULL_MODELFILE, project, name="me/m:v1")
    package = load_package(store, Reference.parse("me/m:v1"))
    assert package.digest == desc.digest
    assert package.weights == store.blob_path(package.weights_digest)
    assert package.weights.read_bytes() == (project / "chat.gguf").read_bytes()
    assert [p.read_bytes() for p in package.adapters] == [(project / "lora.gguf").read_bytes()]
    assert package.licenses == ("MIT License\n\nPermission is hereby granted...", "Apache-2.0")
    assert package.template_source == TEMPLATE_FROM_GGUF
    m = package.modelfile
    assert m.base == "me/m:v1"
    assert m.parameters == {"temperature": 0.7, "num_ctx": 1024, "stop": ("<|end|>", "User:")}
    assert m.system == "You are a terse assistant."
    assert m.messages == (Message("user", "Hello"), Message("assistant", "Hi."))
    assert m.adapters == (str(package.adapters[0]),)
    assert package.size == desc.size + sum(l["size"] for l in package.manifest["layers"]) + package.manifest[
        "config"
    ]["size"]
    assert load_package(store, Reference.parse(f"me/m@{desc.digest}")).digest == desc.digest
    with pytest.raises(ModelNotFoundError, match="'me/m:v2' not found"):
        load_package(store, Reference.parse("me/m:v2"))


def test_shown_modelfile_rebuilds_the_identical_package(tmp_path: Path, project: Path) -> None:
    store = store_at(tmp_path / "home")
    desc = build(store, FULL_MODELFILE, project, name="orig")
    shown = format_modelfile(load_package(store, Reference.parse("orig")).modelfile)
    assert shown.startswith("FROM orig\n")
    elsewhere = tmp_path / "unrelated"
    elsewhere.mkdir()
    assert build(store, shown, elsewhere, name="copy").digest == desc.digest


def test_template_from_the_modelfile_wins_and_is_recorded(tmp_path: Path, project: Path) -> None:
    store = store_at(tmp_path / "home")
    build(store, 'FROM ./chat.gguf\nTEMPLATE """{{ .Prompt }}"""\n', project, name="t")
    package = load_package(store, Reference.parse("t"))
    assert package.template_source == TEMPLATE_FROM_MODELFILE
    assert package.modelfile.template == "{{ .Prompt }}"
    build(store, "FROM ./plain.gguf\n", project, name="none")
    assert load_package(store, Reference.parse("none")).template_source == TEMPLATE_NONE


# ---------------------------------------------------------------------------
# FROM resolution and inheritance


def test_from_paths_resolve_relative_to_the_modelfile_not_the_cwd(
    tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_at(tmp_path / "home")
    monkeypatch.chdir(tmp_path)
    ref = build(store, "FROM plain.gguf\n", project, name="rel")
    assert load_package(store, Reference.parse("rel")).weights.read_bytes() == (project / "plain.gguf").read_bytes()
    monkeypatch.setenv("HOME", str(project))
    assert build(store, "FROM ~/plain.gguf\n", tmp_path, name="tilde").digest == ref.digest
    assert build(store, f"FROM {project / 'plain.gguf'}\n", tmp_path, name="abs").digest == ref.digest


def test_from_a_folder_needs_exactly_one_gguf(tmp_path: Path, project: Path) -> None:
    store = store_at(tmp_path / "home")
    single = tmp_path / "single"
    single.mkdir()
    (single / "model.gguf").write_bytes((project / "plain.gguf").read_bytes())
    (single / "README.md").write_text("hi")
    build(store, "FROM ./single\n", tmp_path, name="folder")
    with pytest.raises(PackageError, match=r"holds 3 GGUF files: chat.gguf, lora.gguf, plain.gguf"):
        build(store, "FROM ./project\n", tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PackageError, match="holds no .gguf file"):
        build(store, "FROM ./empty\n", tmp_path)


def test_from_nothing_is_a_clear_error(tmp_path: Path, project: Path) -> None:
    store = store_at(tmp_path / "home")
    with pytest.raises(PackageError, match=r"no such file or model 'nosuch'; create it .* or pull it"):
        build(store, "FROM nosuch\n", project)
    with pytest.raises(PackageError, match=r"pull it first: ingot pull reg.io/me/m"):
        build(store, "FROM reg.io/me/m\n", project)
    assert store.list_tags() == []


@pytest.mark.parametrize("value", ["./missing.gguf", "../elsewhere/missing.gguf", "/nowhere/missing.gguf", "~/missing"])
def test_a_from_path_that_does_not_exist_names_its_place_and_the_resolved_path(
    tmp_path: Path, project: Path, value: str
) -> None:
    store = store_at(tmp_path / "home")
    resolved = Path(value).expanduser() if value.startswith(("/", "~")) else (project / value).resolve()
    with pytest.raises(PackageError) as info:
        build(store, f"# a comment\nFROM   {value}\n", project)
    message = str(info.value)
    assert message.startswith(f"{project / 'Modelfile'}:2:8: FROM {value}: no such file: {resolved}")
    assert "pull" not in message
    assert store.list_tags() == []


def test_corrupt_gguf_is_rejected_before_anything_is_stored(tmp_path: Path, project: Path) -> None:
    store = store_at(tmp_path / "home")
    data = (project / "plain.gguf").read_bytes()
    (project / "cut.gguf").write_bytes(data[: len(data) // 2])
    with pytest.raises(GGUFError, match="cut short"):
        build(store, "FROM ./cut.gguf\n", project)
    (project / "junk.gguf").write_bytes(b"not a gguf at all")
    with pytest.raises(GGUFError):
        build(store, "FROM ./junk.gguf\n", project)
    assert list(store.blobs_dir.iterdir()) == []
    assert store.list_tags() == []


def test_adapter_must_be_a_lora_gguf(tmp_path: Path, project: Path) -> None:
    store = store_at(tmp_path / "home")
    with pytest.raises(PackageError, match="is not a LoRA adapter"):
        build(store, "FROM ./plain.gguf\nADAPTER ./chat.gguf\n", project)
    with pytest.raises(PackageError, match="no such ADAPTER file"):
        build(store, "FROM ./plain.gguf\nADAPTER ./nope.gguf\n", project)
    assert list(store.blobs_dir.iterdir()) == []


def test_from_a_model_inherits_and_overrides(tmp_path: Path, project: Path) -> None:
    store = store_at(tmp_path / "home")
    parent_desc = build(store, FULL_MODELFILE, project, name="parent")
    child_text = 'FROM parent\nPARAMETER stop "###"\nPARAMETER top_k 20\nSYSTEM Be verbose.\n'
    build(store, child_text, tmp_path, name="child")
    parent = load_package(store, Reference.parse("parent"))
    child = load_package(store, Reference.parse("child"))
    assert child.weights == parent.weights  # the same blob, not a new one
    assert child.modelfile.parameters == {"temperature": 0.7, "num_ctx": 1024, "stop": ("###",), "top_k": 20}
    assert child.modelfile.system == "Be verbose."
    assert child.modelfile.messages == parent.modelfile.messages
    assert child.licenses == parent.licenses
    assert child.adapters == parent.adapters
    assert child.template_source == TEMPLATE_FROM_GGUF
    assert child.digest != parent_desc.digest
    # A child that sets a list replaces the parent's.
    build(store, "FROM parent\nMESSAGE user Only this\nLICENSE Other\n", tmp_path, name="child2")
    child2 = load_package(store, Reference.parse("child2"))
    assert child2.modelfile.messages == (Message("user", "Only this"),)
    assert child2.licenses == ("Other",)
    # An identical child of an identical parent is the same package.
    assert build(store, "FROM parent\n", tmp_path, name="same").digest == parent_desc.digest


# ---------------------------------------------------------------------------
# quantize


def test_quantize_stores_the_quantized_weights(tmp_path: Path, project: Path) -> None:
    pytest.importorskip("llama_cpp")
    store = store_at(tmp_path / "home")
    events = []
    build(store, "FROM ./plain.gguf\n", project, name="q", quantize="q8_0", progress=events.append)
    package = load_package(store, Reference.parse("q"))
    config = package.config["config"]
    assert config["quantization"] == "Q8_0"
    assert package.weights.read_bytes() != (project / "plain.gguf").read_bytes()
    assert package.weights.stat().st_size < (project / "plain.gguf").stat().st_size
    assert any(e.status.startswith("quantizing") for e in events)
    assert list(store.tmp_dir.iterdir()) == []
    assert not (project / "plain.gguf").stat().st_nlink > 1  # the source is not linked when quantizing


# ---------------------------------------------------------------------------
# crashes


def test_sigkill_mid_create_leaves_no_half_blob_and_no_tag(tmp_path: Path, project: Path) -> None:
    home = tmp_path / "home"
    big = project / "big.gguf"
    write_synthetic_gguf(big, SyntheticSpec(n_embd=256, n_vocab=4096, n_layer=2))
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from ingot.modelfile import parse
        from ingot.registry.package import build_package
        from ingot.registry.reference import Reference
        from ingot.registry.store import Store

        def stall(event):
            if event.completed >= 2 * (1 << 20):
                print("ingesting", flush=True)
                sys.stdin.read()

        store = Store(Path(sys.argv[1]) / "models")
        build_package(store, parse("FROM ./big.gguf\\n"), Path(sys.argv[2]), ref=Reference.parse("m"),
                      progress=stall, link=False, env={})
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(home), str(project)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ingesting"
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=60)
    store = store_at(home)
    assert store.list_tags() == []
    assert [p for p in store.blobs_dir.iterdir() if not p.name.endswith(".incomplete")] == []
    # A rerun completes, and the leftover goes once it is stale.
    desc = build(store, "FROM ./big.gguf\n", project, name="m")
    assert load_package(store, Reference.parse("m")).digest == desc.digest
    for leftover in store.blobs_dir.glob("*.incomplete"):
        os.utime(leftover, (0, 0))
    store.gc()
    assert not list(store.blobs_dir.glob("*.incomplete"))


def test_modelfile_dataclass_replace_keeps_package_stable(tmp_path: Path, project: Path) -> None:
    """build_package takes any Modelfile value, not only parsed ones (e.g. edited with dataclasses.replace)."""
    store = store_at(tmp_path / "home")
    base = parse("FROM ./plain.gguf\nPARAMETER temperature 0.5\n")
    edited = dataclasses.replace(base, system="Hi")
    desc = build_package(store, edited, project, ref=Reference.parse("e"), env={})
    again = build(store, "FROM ./plain.gguf\nPARAMETER temperature 0.5\nSYSTEM Hi\n", project, name="e2")
    assert again.digest == desc.digest
    assert isinstance(load_package(store, Reference.parse("e")).modelfile, Modelfile)
