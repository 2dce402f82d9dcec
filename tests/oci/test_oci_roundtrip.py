"""create -> push -> rm -> pull -> show through the real `ingot` command against a real registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingot.cli.main import main
from ingot.registry.package import load_package
from ingot.registry.reference import Reference
from ingot.registry.store import Store
from oci_registry_server import RegistryProcess


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, f"ingot {' '.join(argv)} exited {code}: {err}"
    return out


def test_create_push_rm_pull_show_round_trip(
    registry: RegistryProcess, ingot_home: Path, tiny_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"{registry.host}/roundtrip/tiny:v1"
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text(
        f'FROM {tiny_gguf}\nSYSTEM """Round trip."""\nPARAMETER temperature 0.3\nPARAMETER stop "</s>"\n'
        "MESSAGE user hello\nMESSAGE assistant hi\nLICENSE MIT\n"
    )
    _run(capsys, "create", name, "-f", str(modelfile))
    before = json.loads(_run(capsys, "show", name, "--json"))
    modelfile_before = _run(capsys, "show", name, "--modelfile")

    pushed = json.loads(_run(capsys, "push", name, "--json").strip().splitlines()[-1])
    assert pushed["status"] == "result"
    assert pushed["digest"] == before["digest"]
    assert pushed["bytes_transferred"] == pushed["bytes_total"] > 0

    _run(capsys, "rm", name)
    assert Store(ingot_home / "models").resolve(Reference.parse(name)) is None

    pulled = json.loads(_run(capsys, "pull", name, "--json").strip().splitlines()[-1])
    assert pulled["digest"] == before["digest"]
    assert pulled["format"] == "ingot"
    after = json.loads(_run(capsys, "show", name, "--json"))
    assert after["digest"] == before["digest"]
    assert _run(capsys, "show", name, "--modelfile") == modelfile_before


def test_push_and_pull_of_unchanged_package_move_only_the_manifest(
    registry: RegistryProcess, store: Store, other_store: Store, tiny_gguf: Path, tmp_path: Path
) -> None:
    from ingot.registry.oci import pull, push
    from oci_packages import ingot_package

    ref = Reference.parse(f"{registry.host}/again/tiny:1")
    descriptor = ingot_package(store, ref, tiny_gguf, tmp_path)
    first = push(store, ref)
    assert first.blobs_transferred == first.blobs_total == 3  # config, weights, runtime document
    second = push(store, ref)
    assert (second.bytes_transferred, second.blobs_transferred) == (0, 0)
    assert second.bytes_skipped == second.bytes_total == first.bytes_total
    assert second.digest == descriptor.digest

    pulled = pull(other_store, ref)
    assert pulled.bytes_transferred == pulled.bytes_total
    again = pull(other_store, ref)
    assert (again.bytes_transferred, again.blobs_transferred) == (0, 0)
    assert again.bytes_skipped == again.bytes_total
    assert load_package(other_store, ref).weights_digest == load_package(store, ref).weights_digest


def test_pull_by_digest_leaves_tags_alone_and_resolves_by_digest(
    registry: RegistryProcess, store: Store, other_store: Store, tiny_gguf: Path, tmp_path: Path
) -> None:
    from ingot.registry.oci import pull, push
    from oci_packages import ingot_package

    ref = Reference.parse(f"{registry.host}/bydigest/tiny:1")
    descriptor = ingot_package(store, ref, tiny_gguf, tmp_path)
    push(store, ref)
    by_digest = f"{registry.host}/bydigest/tiny@{descriptor.digest}"
    result = pull(other_store, by_digest)
    assert result.digest == descriptor.digest
    assert other_store.list_tags() == []
    package = load_package(other_store, Reference.parse(by_digest))
    assert package.digest == descriptor.digest


def test_cross_repository_push_mounts_instead_of_uploading(
    registry: RegistryProcess, store: Store, tiny_gguf: Path, tmp_path: Path
) -> None:
    from ingot.registry.oci import push
    from oci_packages import ingot_package

    first = Reference.parse(f"{registry.host}/team-a/model:1")
    descriptor = ingot_package(store, first, tiny_gguf, tmp_path)
    push(store, first)
    second = Reference.parse(f"{registry.host}/team-b/model:1")
    store.tag(second, descriptor)
    result = push(store, second)
    assert result.blobs_mounted == result.blobs_total == 3
    assert result.bytes_transferred == 0
    assert result.digest == descriptor.digest


def test_pull_of_a_missing_tag_is_one_clear_error(registry: RegistryProcess, store: Store) -> None:
    from ingot.registry.oci import RegistryNotFoundError, pull

    with pytest.raises(RegistryNotFoundError, match="not found"):
        pull(store, f"{registry.host}/nobody/nothing:1")
    assert store.list_tags() == []
