"""`ingot push/pull --json` emits one JSON object per line; `--quiet` only the reference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingot.cli.main import main
from ingot.registry.reference import Reference
from ingot.registry.store import Store
from oci_packages import ingot_package
from oci_registry_server import RegistryProcess


def test_json_progress_events_then_result(
    registry: RegistryProcess, ingot_home: Path, tiny_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = Reference.parse(f"{registry.host}/cli/json:1")
    descriptor = ingot_package(Store(ingot_home / "models"), ref, tiny_gguf, tmp_path)
    assert main(["push", str(ref), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    events, result = lines[:-1], lines[-1]
    assert all(set(event) == {"status", "digest", "total", "completed"} for event in events)
    statuses = [event["status"] for event in events]
    assert statuses[0] == "resolving" and statuses[-1] == "success"
    assert "uploading" in statuses and "writing manifest" in statuses
    for event in events:
        assert 0 <= event["completed"] <= max(event["total"], event["completed"])
    assert result["status"] == "result" and result["digest"] == descriptor.digest

    assert main(["rm", str(ref)]) == 0
    capsys.readouterr()
    assert main(["pull", str(ref), "--json"]) == 0
    pulled = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    weights = next(e for e in pulled if e["status"] == "downloading" and e["total"] > 100_000)
    done = [e for e in pulled if e["status"] == "done" and e["digest"] == weights["digest"]]
    assert done and done[0]["completed"] == weights["total"]


def test_quiet_prints_only_the_reference(
    registry: RegistryProcess, ingot_home: Path, tiny_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = Reference.parse(f"{registry.host}/cli/quiet:1")
    descriptor = ingot_package(Store(ingot_home / "models"), ref, tiny_gguf, tmp_path)
    assert main(["push", str(ref), "-q"]) == 0
    assert capsys.readouterr().out == f"{ref}@{descriptor.digest}\n"


def test_push_without_a_host_is_one_clear_error(ingot_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["push", "lonely/model:1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "INGOT_REGISTRY" in err and "Traceback" not in err


def test_unreachable_registry_is_one_clear_error(ingot_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from oci_registry_server import free_port

    assert main(["pull", f"127.0.0.1:{free_port()}/nobody/model:1"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach" in err and "Traceback" not in err


def test_terminal_bars_show_each_blob_and_the_total() -> None:
    import io

    from rich.console import Console

    from ingot.cli.transfer_progress import transfer_display
    from ingot.registry.digest import Progress

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    with transfer_display("bars", title="pull demo/model", console=console) as report:
        report(Progress("resolving", None, 0, 0))
        report(Progress("exists", a, 1000, 1000))
        report(Progress("downloading", b, 3000, 0))
        report(Progress("downloading", b, 3000, 1500))
        report(Progress("done", b, 3000, 3000))
        report(Progress("writing manifest", "sha256:" + "c" * 64, 10, 0))
        tasks = {task.description.split()[-1]: task for task in report._rich.tasks}  # type: ignore[attr-defined]
    assert tasks["aaaaaaaaaaaa"].completed == 1000
    assert tasks["bbbbbbbbbbbb"].completed == 3000
    overall = tasks["pull demo/model".split()[-1]]
    assert (overall.total, overall.completed) == (4000, 4000)
    text = out.getvalue()
    assert "pull demo/model" in text and "bbbbbbbbbbbb" in text and "writing manifest" in text
