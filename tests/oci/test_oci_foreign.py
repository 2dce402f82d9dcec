"""Ollama and Docker Model Runner packages on a registry become runnable ingot packages on pull."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ingot.registry import mediatypes as mt
from ingot.registry.foreign import ANNOTATION_CONVERTED_FROM
from ingot.registry.gguf_info import inspect_gguf
from ingot.registry.oci import pull, push
from ingot.daemon.prompt import PromptSource
from ingot.modelfile.template import render_prompt
from ingot.registry.package import TEMPLATE_FROM_MODELFILE, TEMPLATE_FROM_PACKAGE, Package, load_package
from ingot.registry.reference import Reference
from ingot.registry.store import Store
from ingot.registry.synthetic import SyntheticSpec, write_synthetic_gguf
from oci_packages import Layer, docker_model_runner_package, ollama_package, raw_package
from oci_registry_server import RegistryProcess


def _sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_ollama_package_is_converted_and_runnable(
    registry: RegistryProcess, store: Store, other_store: Store, tiny_gguf: Path
) -> None:
    ref = Reference.parse(f"{registry.host}/ollama/tiny:q")
    params = {"temperature": 0.6, "stop": ["<|eot|>", "</s>"], "num_ctx": 1024, "penalize_newline": True}
    original = ollama_package(store, ref, tiny_gguf, params=params)
    push(store, ref)

    result = pull(other_store, ref)
    assert result.format == "ollama"
    assert result.digest != original.digest  # a new, ingot-format manifest
    assert any("penalize_newline" in note for note in result.notes)
    package = load_package(other_store, ref)
    assert package.digest == result.digest
    assert package.weights_digest == _sha256(tiny_gguf)
    assert package.weights.read_bytes() == tiny_gguf.read_bytes()
    m = package.modelfile
    assert m.template == "{{ if .System }}<<SYS>>{{ .System }}<</SYS>>{{ end }}[INST] {{ .Prompt }} [/INST]"
    assert m.system == "You are an Ollama model."
    assert m.parameters == {"temperature": 0.6, "stop": ("<|eot|>", "</s>"), "num_ctx": 1024}
    assert [(msg.role, msg.content) for msg in m.messages] == [("user", "Is this a test?"), ("assistant", "Yes.")]
    assert package.licenses == ("Test License 1.0\n",)
    assert package.template_source == TEMPLATE_FROM_MODELFILE
    assert package.manifest["artifactType"] == mt.MODEL_ARTIFACT
    assert package.manifest["annotations"][ANNOTATION_CONVERTED_FROM] == f"ollama {ref}@{original.digest}"

    # Pulling it again transfers nothing: the original blobs are all local.
    again = pull(other_store, ref)
    assert (again.bytes_transferred, again.digest) == (0, result.digest)


def _rendered(package: Package, gguf: Path) -> str:
    """The prompt the daemon renders for one user turn, through the same PromptSource it uses."""
    source = PromptSource.of(package, gguf_chat_template=inspect_gguf(gguf).chat_template, bos_token="", eos_token="")
    return render_prompt(source.template, messages=[{"role": "user", "content": "Hi"}],
                         gguf_chat_template=source.gguf_chat_template)


def test_docker_model_runner_package_is_converted_and_runnable(
    registry: RegistryProcess, store: Store, other_store: Store, tiny_gguf: Path
) -> None:
    ref = Reference.parse(f"{registry.host}/ai/tiny:latest")
    jinja = inspect_gguf(tiny_gguf).chat_template
    assert jinja is not None
    docker_model_runner_package(store, ref, tiny_gguf, context_size=4096, jinja=jinja)
    push(store, ref)

    result = pull(other_store, ref)
    assert result.format == "docker-model-runner"
    assert result.notes == ()
    package = load_package(other_store, ref)
    assert package.weights_digest == _sha256(tiny_gguf)
    assert package.modelfile.parameters == {"num_ctx": 4096}
    assert package.licenses == ("DMR Test License\n",)
    assert package.modelfile.template == jinja
    assert package.template_source == TEMPLATE_FROM_PACKAGE


@pytest.mark.parametrize("gguf_has_template", [True, False])
def test_docker_model_runner_chat_template_layer_is_the_template_used(
    registry: RegistryProcess, store: Store, other_store: Store, tiny_gguf: Path, tmp_path: Path,
    gguf_has_template: bool,
) -> None:
    # Docker Model Runner renders with its chat.template.jinja layer whatever the GGUF carries.
    gguf = tiny_gguf if gguf_has_template else write_synthetic_gguf(tmp_path / "bare.gguf", SyntheticSpec())
    assert (inspect_gguf(gguf).chat_template is not None) == gguf_has_template
    layer = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}<assistant>"
    ref = Reference.parse(f"{registry.host}/ai/custom-template:{int(gguf_has_template)}")
    docker_model_runner_package(store, ref, gguf, context_size=2048, jinja=layer)
    push(store, ref)
    result = pull(other_store, ref)
    assert result.notes == ()
    package = load_package(other_store, ref)
    assert (package.modelfile.template, package.template_source) == (layer, TEMPLATE_FROM_PACKAGE)
    assert _rendered(package, gguf) == "<user>Hi<assistant>"


def test_modelpack_package_with_a_chat_template_file_renders_with_it(
    registry: RegistryProcess, store: Store, other_store: Store, tmp_path: Path
) -> None:
    gguf = write_synthetic_gguf(tmp_path / "bare.gguf", SyntheticSpec())
    template = "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}[assistant] "
    ref = Reference.parse(f"{registry.host}/modelpack/with-template:1")
    raw_package(
        store, ref, config_media_type=mt.MODEL_CONFIG, artifact_type=mt.MODEL_ARTIFACT,
        config={"descriptor": {}, "config": {"format": "gguf"}, "modelfs": {"type": "layers", "diffIds": []}},
        layers=[
            Layer(mt.MODEL_WEIGHT_RAW, gguf, {mt.ANNOTATION_FILEPATH: "model.gguf"}),
            Layer(mt.MODEL_WEIGHT_CONFIG_RAW, template.encode(), {mt.ANNOTATION_FILEPATH: "chat_template.jinja"}),
        ],
    )
    push(store, ref)
    assert pull(other_store, ref).format == "modelpack"
    package = load_package(other_store, ref)
    assert (package.modelfile.template, package.template_source) == (template, TEMPLATE_FROM_PACKAGE)
    assert _rendered(package, gguf) == "[user] Hi\n[assistant] "


def test_ollama_package_without_a_model_layer_is_refused(
    registry: RegistryProcess, store: Store, other_store: Store
) -> None:
    from ingot.registry.oci import UnsupportedFormatError
    from oci_packages import OLLAMA, OLLAMA_CONFIG, Layer, raw_package

    ref = Reference.parse(f"{registry.host}/ollama/empty:1")
    raw_package(store, ref, config_media_type=OLLAMA_CONFIG, config={}, manifest_media_type=mt.DOCKER_MANIFEST,
                layers=[Layer(OLLAMA + "system", b"only a system prompt")])
    push(store, ref)
    with pytest.raises(UnsupportedFormatError, match="0 model layers"):
        pull(other_store, ref)
    assert other_store.list_tags() == []
