"""Pulling a package whose template cannot render: the package is kept, the pull says why its chats would fail."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ingot.modelfile.template import DEFAULT_BUDGET
from ingot.registry.oci import pull, push
from ingot.registry.package import load_package
from ingot.registry.reference import Reference
from ingot.registry.store import Store
from oci_packages import ingot_package, ollama_package
from oci_registry_server import RegistryProcess

RUNAWAY = "TEMPLATE {{ range .Messages }}{{ range 1000000000 }}x{{ end }}{{ end }}\n"


def test_an_ollama_template_that_does_not_compile_is_kept_with_a_warning(
    registry: RegistryProcess, store: Store, other_store: Store, tiny_gguf: Path
) -> None:
    ref = Reference.parse(f"{registry.host}/ollama/broken:1")
    ollama_package(store, ref, tiny_gguf, params={}, template=b"{{ if .System }}no end")
    push(store, ref)

    result = pull(other_store, ref)
    warnings = [n for n in result.notes if "TEMPLATE does not compile" in n]
    assert len(warnings) == 1, result.notes
    assert "broken:1" in warnings[0] and "has no {{end}}" in warnings[0]
    assert load_package(other_store, ref).modelfile.template == "{{ if .System }}no end"


def test_a_runaway_template_warns_on_pull_within_the_configured_budget(
    registry: RegistryProcess, store: Store, other_store: Store, tiny_gguf: Path, tmp_path: Path
) -> None:
    ref = Reference.parse(f"{registry.host}/team/runaway:1")
    ingot_package(store, ref, tiny_gguf, tmp_path, RUNAWAY)
    push(store, ref)

    result = pull(other_store, ref)
    [note] = result.notes
    assert note.startswith(f"{registry.host}/team/runaway:1: its TEMPLATE fails a trial render") and "max_loop_iterations" in note
    # A template that is fine under the defaults, but not under a tighter budget.
    fine = Reference.parse(f"{registry.host}/team/fine:1")
    ingot_package(store, fine, tiny_gguf, tmp_path, "TEMPLATE {{ range .Messages }}{{ .Content }}{{ end }}\n")
    push(store, fine)
    assert not pull(other_store, fine).notes
    tight = dataclasses.replace(DEFAULT_BUDGET, max_loop_iterations=2)
    notes = pull(other_store, fine, template_budget=tight).notes
    assert len(notes) == 1 and "max_loop_iterations" in notes[0]
