"""`ingot fmt`: print, --check and --write on real files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingot.cli.main import main

CANONICAL = "FROM llama3.2\n\nPARAMETER num_ctx 4096\nPARAMETER temperature 1.0\n\nSYSTEM You are Mario.\n"
MESSY = "from llama3.2\nparameter temperature 1\nSYSTEM You are Mario.\nPARAMETER num_ctx 4096\n"


def write(tmp_path: Path, text: str | bytes, name: str = "Modelfile") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def test_prints_the_canonical_form(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, MESSY)
    assert main(["fmt", str(path)]) == 0
    assert capsys.readouterr().out == CANONICAL
    assert path.read_text() == MESSY


def test_check_passes_on_canonical_and_fails_with_a_diff_otherwise(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, CANONICAL, "good")
    assert main(["fmt", "--check", str(good)]) == 0
    assert capsys.readouterr().out == ""
    bad = write(tmp_path, MESSY, "bad")
    assert main(["fmt", "--check", str(bad)]) == 1
    captured = capsys.readouterr()
    assert "+PARAMETER temperature 1.0" in captured.out
    assert "not in canonical form" in captured.err
    assert bad.read_text() == MESSY


def test_check_counts_crlf_and_bom_as_not_canonical(tmp_path: Path) -> None:
    assert main(["fmt", "--check", str(write(tmp_path, CANONICAL.replace("\n", "\r\n")))]) == 1
    assert main(["fmt", "--check", str(write(tmp_path, b"\xef\xbb\xbf" + CANONICAL.encode()))]) == 1


def test_write_rewrites_in_place_and_keeps_the_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, MESSY)
    os.chmod(path, 0o640)
    assert main(["fmt", "--write", str(path)]) == 0
    assert path.read_text() == CANONICAL
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert "reformatted" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Modelfile"]
    assert main(["fmt", "--check", str(path)]) == 0


def test_write_refuses_to_drop_comments_unless_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "# keep me\n" + MESSY)
    assert main(["fmt", "--write", str(path)]) == 1
    assert "--drop-comments" in capsys.readouterr().err
    assert path.read_text() == "# keep me\n" + MESSY
    assert main(["fmt", "--write", "--drop-comments", str(path)]) == 0
    assert path.read_text() == CANONICAL


def test_parse_error_exits_1_with_the_located_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "FROM x\nSYSTEM one\ntwo\n")
    for extra in ([], ["--check"], ["--write"]):
        assert main(["fmt", *extra, str(path)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"{path}:3:1: unexpected text 'two'")
        assert "hint: " in err and "triple quotes" in err
    assert path.read_text() == "FROM x\nSYSTEM one\ntwo\n"


def test_warnings_go_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "FROM x\nPARAMETER mirostat 2\n")
    assert main(["fmt", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "FROM x\n"
    assert f"{path}:2:11: warning: parameter 'mirostat' is deprecated" in captured.err


def test_missing_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fmt", str(tmp_path / "nope")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_check_and_write_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["fmt", "--check", "--write", str(write(tmp_path, CANONICAL))])
    assert caught.value.code == 2


def test_reads_standard_input_in_a_real_process(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ingot.cli.main", "fmt", "-"],
        input=b"\xff\xfe" + MESSY.replace("\n", "\r\n").encode("utf-16-le"),
        capture_output=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode("utf-8") == CANONICAL
