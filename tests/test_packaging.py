"""The installed layout: every folder lands under the `ingot` namespace, nothing generic top-level."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _build_wheel(out: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
    )
    (wheel,) = out.glob("ingot-*.whl")
    return wheel


def test_wheel_puts_everything_under_the_ingot_namespace(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/", 1)[0] for name in names}
    assert {t for t in top_level if not t.endswith(".dist-info")} == {"ingot"}
    for folder in ("modelfile", "registry", "daemon", "cli", "proto"):
        # Every package folder, subpackages included, and every data file the
        # code loads at run time (grammars, .proto sources) must ship.
        for init in (ROOT / folder).rglob("__init__.py"):
            assert f"ingot/{init.relative_to(ROOT).as_posix()}" in names
        for pattern in ("*.lark", "*.html", "*.css", "*.js"):  # grammars; the web page's files
            for data in (ROOT / folder).rglob(pattern):
                assert f"ingot/{data.relative_to(ROOT).as_posix()}" in names
    assert {f"ingot/daemon/http/web/{name}" for name in ("index.html", "app.js", "style.css")} <= set(names)
    # The namespace itself has no __init__.py: it only groups the folders.
    assert "ingot/__init__.py" not in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "ingot = ingot.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_console_script_runs() -> None:
    bindir = Path(sys.executable).parent
    result = subprocess.run([str(bindir / "ingot"), "--help"], capture_output=True, text=True, check=True)
    assert "usage: ingot" in result.stdout
