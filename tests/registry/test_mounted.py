"""Packages mounted as folders (image volumes): read back from their titled layer files, nothing copied or written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from image_volume import lay_out_image_volume
from lora_adapter import write_adapter

from ingot.modelfile import parse
from ingot.registry.digest import digest_file
from ingot.registry.errors import PackageError
from ingot.registry.mounted import ModelDir, load_model_dirs, load_mounted_package, parse_model_dir
from ingot.registry.package import build_package, load_package
from ingot.registry.reference import Reference
from ingot.registry.store import Store
from ingot.registry.synthetic import SyntheticSpec, write_synthetic_gguf

MODELFILE = '''\
FROM ./chat.gguf
PARAMETER temperature 0.2
PARAMETER stop "User:"
SYSTEM """Be brief."""
MESSAGE user Hi
ADAPTER ./lora.gguf
LICENSE MIT
LICENSE """Apache-2.0
with a second line"""
'''


@pytest.fixture
def built(tmp_path: Path, small_model: Path) -> tuple[Store, Reference]:
    project = tmp_path / "project"
    project.mkdir()
    (project / "chat.gguf").write_bytes(small_model.read_bytes())
    write_adapter(project / "lora.gguf")
    store = Store(tmp_path / "home" / "models")
    ref = Reference.parse("team/chat:1")
    build_package(store, parse(MODELFILE), project, ref=ref, env={})
    return store, ref


def test_a_mounted_package_reads_back_like_the_stored_one(built: tuple[Store, Reference], tmp_path: Path) -> None:
    store, ref = built
    folder = tmp_path / "mnt" / "chat"
    names = lay_out_image_volume(store, ref, folder)
    assert names == ["model.gguf", "adapter-1.gguf", "LICENSE", "LICENSE-2", "ingot-modelfile.json"]
    stored = load_package(store, ref)

    mounted = load_mounted_package(ModelDir(Reference.parse("chat"), folder))

    # Served from the mount itself: the very files, not copies.
    assert mounted.weights == folder / "model.gguf"
    assert os.path.samefile(mounted.weights, stored.weights)
    assert mounted.adapters == (folder / "adapter-1.gguf",)
    assert mounted.licenses == stored.licenses == ("MIT", "Apache-2.0\nwith a second line")
    assert mounted.modelfile.parameters == stored.modelfile.parameters
    assert (mounted.modelfile.system, mounted.modelfile.messages) == (stored.modelfile.system, stored.modelfile.messages)
    assert mounted.template_source == stored.template_source
    assert mounted.weights_digest == stored.weights_digest
    assert mounted.config == stored.config
    assert mounted.size == sum(layer["size"] for layer in stored.manifest["layers"])
    assert mounted.reference == Reference.parse("chat")


def test_the_digest_is_the_one_the_name_pins_else_the_runtime_layers(
    built: tuple[Store, Reference], tmp_path: Path
) -> None:
    store, ref = built
    folder = tmp_path / "chat"
    lay_out_image_volume(store, ref, folder)
    manifest_digest = load_package(store, ref).digest
    pinned = load_mounted_package(parse_model_dir(f"chat@{manifest_digest}={folder}"))
    assert pinned.digest == manifest_digest
    unpinned = load_mounted_package(parse_model_dir(str(folder)))
    assert unpinned.digest == digest_file(folder / "ingot-modelfile.json")[0]
    assert unpinned.reference.short == "chat"  # named after its folder


def test_a_folder_with_one_gguf_and_no_ingot_layer_is_served_as_that_gguf(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    weights = write_synthetic_gguf(folder / "weights.gguf", SyntheticSpec(seed=3))
    (folder / "README.md").write_text("a ModelPack package another tool built")
    package = load_mounted_package(ModelDir(Reference.parse("plain"), folder))
    assert package.weights == weights
    assert package.weights_digest == digest_file(weights)[0]
    assert package.modelfile.parameters == {} and package.adapters == ()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "model.gguf").unlink(), "has no model.gguf"),
        (lambda f: (f / "adapter-1.gguf").unlink(), "has no adapter-1.gguf"),
        (lambda f: _rewrite(f / "LICENSE", b"GPL"), "does not match the digest"),
        (lambda f: _rewrite(f / "ingot-modelfile.json", b"{not json"), "is not valid JSON"),
        (lambda f: _rewrite(f / "ingot-modelfile.json", b"[]"), "no 'weights' digest"),
    ],
)
def test_a_broken_mount_is_one_error_naming_the_file(
    built: tuple[Store, Reference], tmp_path: Path, damage, message: str
) -> None:
    store, ref = built
    folder = tmp_path / "chat"
    lay_out_image_volume(store, ref, folder)
    damage(folder)
    with pytest.raises(PackageError, match=message) as raised:
        load_mounted_package(ModelDir(Reference.parse("chat"), folder))
    assert str(folder) in str(raised.value)


def _rewrite(path: Path, data: bytes) -> None:
    path.unlink()  # a hardlink into the store: replace it, never write through it
    path.write_bytes(data)


def test_folders_that_are_not_packages_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="does not exist"):
        load_mounted_package(ModelDir(Reference.parse("x"), tmp_path / "absent"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(PackageError, match="no ingot-modelfile.json and no .gguf file"):
        load_mounted_package(ModelDir(Reference.parse("x"), tmp_path / "empty"))
    two = tmp_path / "two"
    two.mkdir()
    for name in ("a.gguf", "b.gguf"):
        write_synthetic_gguf(two / name, SyntheticSpec())
    with pytest.raises(PackageError, match=r"2 GGUF files \(a.gguf, b.gguf\)"):
        load_mounted_package(ModelDir(Reference.parse("x"), two))


def test_model_dir_syntax_and_duplicate_names(built: tuple[Store, Reference], tmp_path: Path) -> None:
    assert parse_model_dir("team/llama:2=/models/llama") == ModelDir(Reference.parse("team/llama:2"), Path("/models/llama"))
    assert parse_model_dir("/models/embed").name == Reference.parse("embed")
    for bad in ("llama=", "Bad Name=/x", "="):
        with pytest.raises(ValueError, match="model dir"):
            parse_model_dir(bad)
    store, ref = built
    folder = tmp_path / "chat"
    lay_out_image_volume(store, ref, folder)
    loaded = load_model_dirs([parse_model_dir(f"chat={folder}")])
    assert list(loaded) == [Reference.parse("chat").tagged]
    with pytest.raises(PackageError, match="two model folders are named chat"):
        load_model_dirs([parse_model_dir(f"chat={folder}"), parse_model_dir(f"chat:latest={folder}")])
