"""`ingot pull [ALIAS=]NAME... --from-file FILE`: the entries, and one precise error for a bad one."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingot.cli.cmd_pull import PullEntry, parse_entry, read_entries
from ingot.cli.main import main
from ingot.registry.errors import ReferenceError
from ingot.registry.reference import Reference


def test_entries_with_and_without_an_alias() -> None:
    assert parse_entry("host:5000/team/llama:1") == PullEntry("host:5000/team/llama:1")
    assert parse_entry(" llama=host:5000/team/llama:1.4@sha256:" + "a" * 64) == PullEntry(
        "host:5000/team/llama:1.4@sha256:" + "a" * 64, Reference.parse("llama"))


def test_a_models_file_skips_comments_and_names_the_line_of_a_bad_entry(tmp_path: Path) -> None:
    models = tmp_path / "models.txt"
    models.write_text("# the chat group\n\nllama=h:5000/t/llama:1  # pinned by CI\nh:5000/t/embed:2\n")
    assert read_entries(models) == [PullEntry("h:5000/t/llama:1", Reference.parse("llama")), PullEntry("h:5000/t/embed:2")]
    models.write_text("llama=h:5000/t/llama:1\nchat@sha256:" + "b" * 64 + "=h:5000/t/chat:1\n")
    with pytest.raises(ReferenceError, match=rf"^{models}:2: the alias .* has a digest"):
        read_entries(models)
    models.write_text("ok=h:5000/t/ok:1\nBad Name=h:5000/t/x:1\n")
    with pytest.raises(ReferenceError, match=rf"^{models}:2: "):
        read_entries(models)


def test_nothing_to_pull_and_a_missing_file_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pull"]) == 1
    assert "nothing to pull" in capsys.readouterr().err
    assert main(["pull", "--from-file", str(tmp_path / "absent.txt")]) == 1
    err = capsys.readouterr().err
    assert f"cannot read {tmp_path / 'absent.txt'}" in err and "Traceback" not in err
