"""`ingot create/list/show/cp/rm`, driven through the real console script with INGOT_HOME in tmp_path."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from ingot.cli.output import human_ago, human_size
from ingot.cli.progress import progress_display
from ingot.registry.digest import Progress, digest_bytes
from ingot.registry.synthetic import SyntheticSpec, write_synthetic_gguf

INGOT = str(Path(sys.executable).parent / "ingot")
CHAT_TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}"

MODELFILE = '''\
FROM ./model.gguf
PARAMETER temperature 0.6
PARAMETER stop "<|end|>"
SYSTEM """You answer in one line."""
MESSAGE user Hi
LICENSE """Apache License 2.0
(full text)"""
'''


def ingot(home: Path, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("INGOT_HOME", "SOURCE_DATE_EPOCH")}
    full_env["INGOT_HOME"] = str(home)
    full_env.update(env or {})
    return subprocess.run(
        [INGOT, *args], capture_output=True, text=True, cwd=cwd, env=full_env, timeout=120, check=False
    )


def assert_user_error(result: subprocess.CompletedProcess[str], *fragments: str, lines: int = 1) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == lines, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = write_synthetic_gguf(tmp_path_factory.mktemp("w") / "m.gguf", SyntheticSpec(chat_template=CHAT_TEMPLATE))
    return path.read_bytes()


@pytest.fixture
def project(tmp_path: Path, model_bytes: bytes) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "model.gguf").write_bytes(model_bytes)
    (folder / "Modelfile").write_text(MODELFILE)
    return folder


def create(home: Path, project: Path, name: str, *extra: str) -> str:
    result = ingot(home, "create", name, "-f", str(project / "Modelfile"), "--json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["digest"]


def test_create_list_show(tmp_path: Path, project: Path) -> None:
    home = tmp_path / "home"
    result = ingot(home, "create", "me/assistant:v1", cwd=project)  # -f defaults to ./Modelfile
    assert result.returncode == 0, result.stderr
    words = result.stdout.split()
    assert words[:2] == ["created", "me/assistant:v1"]
    digest = words[2]
    assert digest.startswith("sha256:") and len(digest) == 71
    assert (home / "models" / "blobs" / "sha256" / digest[7:]).is_file()

    listing = ingot(home, "list")
    assert listing.returncode == 0
    header, row = listing.stdout.splitlines()
    assert header.split() == ["NAME", "ID", "SIZE", "MODIFIED"]
    assert row.split()[:2] == ["me/assistant:v1", digest[7:19]]
    assert "just now" in row or "seconds ago" in row
    entries = json.loads(ingot(home, "list", "--json").stdout)
    assert [(e["name"], e["reference"], e["digest"]) for e in entries] == [
        ("me/assistant:v1", "me/assistant:v1", digest)
    ]
    assert entries[0]["size"] > len((project / "model.gguf").read_bytes())

    summary = ingot(home, "show", "me/assistant:v1")
    assert summary.returncode == 0
    assert "architecture      llama" in summary.stdout
    assert "from the GGUF (chat_template)" in summary.stdout
    assert ingot(home, "show", "me/assistant:v1", "--system").stdout == "You answer in one line.\n"
    assert ingot(home, "show", "me/assistant:v1", "--template").stdout == CHAT_TEMPLATE + "\n"
    assert ingot(home, "show", "me/assistant:v1", "--license").stdout == "Apache License 2.0\n(full text)\n"
    params = ingot(home, "show", "me/assistant:v1", "--parameters").stdout.splitlines()
    assert [line.split() for line in params] == [["stop", '"<|end|>"'], ["temperature", "0.6"]]
    shown = json.loads(ingot(home, "show", "me/assistant:v1", "--json").stdout)
    assert shown["digest"] == digest
    assert shown["parameters"] == {"temperature": 0.6, "stop": ["<|end|>"]}
    assert shown["template_source"] == "gguf"
    assert shown["details"]["format"] == "gguf"


def test_show_modelfile_recreates_the_same_package(tmp_path: Path, project: Path) -> None:
    home = tmp_path / "home"
    digest = create(home, project, "orig")
    text = ingot(home, "show", "orig", "--modelfile").stdout
    assert text.splitlines()[0] == "FROM orig"
    again = tmp_path / "again"
    again.mkdir()
    (again / "Modelfile").write_text(text)
    assert create(home, again, "copy") == digest


def test_same_modelfile_same_digest_in_two_homes(tmp_path: Path, project: Path) -> None:
    options = ("--version", "1.0", "--revision", "abc", "--source", "https://x.io/m")
    first = create(tmp_path / "home1", project, "m", *options)
    second = create(tmp_path / "home2", project, "other/name:tag", "--copy", *options)
    assert first == second
    # SOURCE_DATE_EPOCH (read from the environment) stamps a reproducible creation time.
    home = tmp_path / "home2"
    dated = ingot(home, "create", "d", "-f", str(project / "Modelfile"), *options, env={"SOURCE_DATE_EPOCH": "0"})
    assert dated.returncode == 0, dated.stderr
    shown = json.loads(ingot(home, "show", "d", "--json").stdout)
    assert shown["annotations"] == {
        "org.opencontainers.image.created": "1970-01-01T00:00:00Z",
        "org.opencontainers.image.version": "1.0",
        "org.opencontainers.image.revision": "abc",
        "org.opencontainers.image.source": "https://x.io/m",
    }
    assert shown["digest"] != first


def test_cp_and_rm_keep_shared_blobs(tmp_path: Path, project: Path) -> None:
    home = tmp_path / "home"
    digest = create(home, project, "a")
    blobs = home / "models" / "blobs" / "sha256"
    weights = digest_bytes((project / "model.gguf").read_bytes())
    assert ingot(home, "cp", "a", "b:v2").returncode == 0
    assert ingot(home, "tag", "b:v2", "localhost:5000/me/b").returncode == 0
    names = [e["name"] for e in json.loads(ingot(home, "list", "--json").stdout)]
    assert names == ["a", "b:v2", "localhost:5000/me/b"]
    (project / "Modelfile").write_text(MODELFILE.replace("0.6", "0.9"))
    other = create(home, project, "c")  # shares the weights with a, not the manifest
    assert other != digest

    removed = ingot(home, "rm", "a", "b:v2")
    assert removed.returncode == 0, removed.stderr
    assert "deleted 'a'" in removed.stdout and "deleted 'b:v2'" in removed.stdout
    assert (blobs / digest[7:]).exists()  # still tagged as localhost:5000/me/b
    assert ingot(home, "rm", "localhost:5000/me/b").returncode == 0
    assert not (blobs / digest[7:]).exists()
    assert (blobs / weights[7:]).exists()  # c still uses the weights
    assert ingot(home, "rm", "c").returncode == 0
    assert [p for p in blobs.iterdir()] == []
    assert (project / "model.gguf").read_bytes()  # the user's file outlives the blob it was linked to


def test_user_errors_are_one_line_without_traceback(tmp_path: Path, project: Path) -> None:
    home = tmp_path / "home"
    create(home, project, "known")
    assert_user_error(ingot(home, "rm", "nosuch"), "model 'nosuch' not found")
    mixed = ingot(home, "rm", "nosuch", "known")
    assert mixed.returncode == 1 and "deleted 'known'" in mixed.stdout
    assert_user_error(ingot(home, "show", "bad name"), "contains whitespace")
    assert_user_error(ingot(home, "cp", "missing", "x"), "model 'missing' not found")
    assert_user_error(ingot(home, "create", "x", "-f", str(tmp_path / "nope")), "no Modelfile at")

    (project / "Modelfile").write_text("FROM nosuchmodel\n")
    assert_user_error(ingot(home, "create", "x", cwd=project), "no such file or model 'nosuchmodel'")
    data = (project / "model.gguf").read_bytes()
    (project / "cut.gguf").write_bytes(data[:1000])
    (project / "Modelfile").write_text("FROM ./cut.gguf\n")
    assert_user_error(ingot(home, "create", "x", cwd=project), "cut.gguf")
    (project / "Modelfile").write_text("FROM ./model.gguf\nPARAMETER temperature hot\n")
    bad = ingot(home, "create", "x", cwd=project)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "Modelfile:2:" in bad.stderr  # ModelfileError: file:line:col, may span lines
    (project / "Modelfile").write_text("FROM ./model.gguf\n")
    assert_user_error(ingot(home, "create", "x", "--quantize", "q9_z", cwd=project), "q9_z")
    assert not list((home / "models" / "blobs" / "sha256").iterdir())  # failed creates stored nothing


def test_two_concurrent_creates_leave_a_consistent_store(tmp_path: Path, project: Path) -> None:
    home = tmp_path / "home"
    second = tmp_path / "second"
    second.mkdir()
    (second / "model.gguf").write_bytes((project / "model.gguf").read_bytes())
    (second / "Modelfile").write_text(MODELFILE.replace("0.6", "0.1"))
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    env["INGOT_HOME"] = str(home)
    procs = [
        subprocess.Popen([INGOT, "create", name, "-f", str(folder / "Modelfile"), "--json"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, folder in (("one", project), ("two", second), ("three", project), ("one:again", second))
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], results
    digests = [json.loads(out)["digest"] for out, _ in results]
    assert digests[0] == digests[2] and digests[1] == digests[3]
    listed = {e["name"]: e["digest"] for e in json.loads(ingot(home, "list", "--json").stdout)}
    assert listed == {"one": digests[0], "two": digests[1], "three": digests[0], "one:again": digests[1]}
    models = home / "models"
    for blob in (models / "blobs" / "sha256").iterdir():
        assert digest_bytes(blob.read_bytes()) == f"sha256:{blob.name}"
    for entry in json.loads((models / "index.json").read_text())["manifests"]:
        manifest = json.loads((models / "blobs" / "sha256" / entry["digest"][7:]).read_bytes())
        for part in [manifest["config"], *manifest["layers"]]:
            assert (models / "blobs" / "sha256" / part["digest"][7:]).is_file()


# ---------------------------------------------------------------------------
# shared output helpers


def test_progress_display_draws_byte_bars_on_a_terminal() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100)
    with progress_display(enabled=True, delay_s=0, console=console) as report:
        report(Progress("adding model.gguf", None, 2_000_000, 1_000_000))
        report(Progress("adding model.gguf", None, 2_000_000, 2_000_000))
        report(Progress("stored", "sha256:" + "ab" * 32, 2_000_000, 2_000_000))
    text = buffer.getvalue()
    assert "adding model.gguf" in text
    assert "2.0/2.0 MB" in text
    assert "stored abababababab" in text


def test_progress_display_stays_silent_when_disabled_or_quick() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True)
    with progress_display(enabled=False, console=console) as report:
        report(Progress("x", None, 10, 5))
    with progress_display(enabled=True, delay_s=3600, console=console) as report:
        report(Progress("x", None, 10, 5))
    assert buffer.getvalue() == ""


@pytest.mark.parametrize(
    ("n", "text"), [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (704_000, "704 kB"), (1_234_567_890, "1.2 GB")]
)
def test_human_size(n: int, text: str) -> None:
    assert human_size(n) == text


def test_human_ago() -> None:
    from datetime import datetime, timezone

    now = datetime(2025, 1, 2, 12, 0, 0, tzinfo=timezone.utc)
    assert human_ago("2025-01-02T12:00:00Z", now=now) == "just now"
    assert human_ago("2025-01-02T11:00:00Z", now=now) == "an hour ago"
    assert human_ago("2025-01-02T09:00:00Z", now=now) == "3 hours ago"
    assert human_ago("2024-12-01T12:00:00Z", now=now) == "a month ago"
    assert human_ago(None, now=now) == "-"
    assert human_ago("garbage", now=now) == "-"
