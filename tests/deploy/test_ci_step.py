"""docs/kubernetes.md's CI step, run as written: build and push a Modelfile repo, pin the digests, pull the list."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from daemon_helpers import COUNTING
from deploy_helpers import REPO
from oci_registry_server import RegistryProcess

from ingot.cli.cmd_pull import PullEntry, read_entries
from ingot.registry.home import IngotHome
from ingot.registry.reference import Reference
from ingot.registry.store import Store
from ingot.registry.synthetic import write_synthetic_gguf

DOC = REPO / "docs/kubernetes.md"


def _documented_pin_script() -> str:
    """The Python that turns `ingot watch --status --json` into models.txt, exactly as the doc shows it."""
    match = re.search(r"ingot watch --status --json models/ \| python3 -c '\n(.*?)\n' > ", DOC.read_text(), re.S)
    assert match, "docs/kubernetes.md no longer shows the pinning step"
    return match.group(1)


def _ingot(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ingot.cli.main", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_documented_ci_step_pins_what_it_pushed(tmp_path: Path, registry: RegistryProcess) -> None:
    repo = tmp_path / "models"
    (repo / "chat").mkdir(parents=True)
    write_synthetic_gguf(repo / "chat" / "model.gguf", COUNTING)
    (repo / "chat" / "Modelfile").write_text("FROM ./model.gguf\nPARAMETER temperature 0\n")
    (repo / "chat" / "ingot.yaml").write_text('name: team/chat\ntags: ["1.4"]\n')
    env = {**os.environ, "INGOT_HOME": str(tmp_path / "ci-home")}

    built = _ingot("watch", "--once", "--push", registry.host, str(repo), env=env)
    assert built.returncode == 0, built.stderr
    status = _ingot("watch", "--status", "--json", str(repo), env=env)
    assert status.returncode == 0, status.stderr
    pinned = subprocess.run([sys.executable, "-c", _documented_pin_script()], input=status.stdout,
                            capture_output=True, text=True, check=True)
    models = tmp_path / "models.txt"
    models.write_text(pinned.stdout)

    local = Store.open(IngotHome(tmp_path / "ci-home")).resolve(Reference.parse("team/chat:1.4"))
    assert local is not None
    assert read_entries(models) == [
        PullEntry(f"{registry.host}/team/chat:1.4@{local.digest}", Reference.parse("chat"))
    ]
    # And the init container's command reads it: the pinned package under its alias.
    pulled = _ingot("pull", "--quiet", "--from-file", str(models), env={**env, "INGOT_HOME": str(tmp_path / "pod")})
    assert pulled.returncode == 0, pulled.stderr
    assert Store.open(IngotHome(tmp_path / "pod")).resolve(Reference.parse("chat")).digest == local.digest
