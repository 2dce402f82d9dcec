"""deploy/Containerfile builds llama-cpp-python the way scripts/setup does: one script, one pin, one flag table.

No container can be built here, so the build is checked where it is decided:
the Containerfile's build args must name a backend scripts/install-engine
knows, its build step must run that script (never pip on its own), and the
script must install exactly the version pyproject.toml pins, with the CMake
flags each backend needs.
"""

from __future__ import annotations

import re
import subprocess
import tomllib

import pytest
from deploy_helpers import CONTAINERFILE, REPO, containerfile

from ingot.daemon.address import SOCKET_ENV
from ingot.daemon.constants import SERVE_ENV
from ingot.registry.home import HOME_ENV

INSTALL_ENGINE = REPO / "scripts/install-engine"
# What each backend must turn on in llama.cpp (GGML_NATIVE=OFF: an image runs on nodes it was not built on).
BACKEND_FLAGS = {
    "cpu": {"-DGGML_NATIVE=OFF"},
    "cuda": {"-DGGML_NATIVE=OFF", "-DGGML_CUDA=on"},
    "rocm": {"-DGGML_NATIVE=OFF", "-DGGML_HIP=on"},
}


def _print(backend: str, cmake_args: str = "") -> dict[str, str]:
    done = subprocess.run(
        [str(INSTALL_ENGINE), "--print", backend],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "CMAKE_ARGS": cmake_args},
    )
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines())


def _pins() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    return {m.group(1) for r in requirements if (m := re.fullmatch(r"llama-cpp-python(?:\[\w+\])?==([\d.]+)", r))}


def test_one_version_of_llama_cpp_python_everywhere() -> None:
    pins = _pins()
    assert len(pins) == 1, f"pyproject.toml pins llama-cpp-python at {pins}"
    (version,) = pins
    for backend in ("native", *BACKEND_FLAGS):
        printed = _print(backend)
        assert printed["version"] == version
        assert f"llama-cpp-python=={version}" in printed["command"]


def test_the_build_args_pick_a_backend_scripts_install_engine_knows() -> None:
    image = containerfile()
    assert image.build_args["BACKEND"] == "cpu", "the default image must run on any CPU node"
    assert image.build_args["CMAKE_ARGS"] == ""
    for backend, flags in BACKEND_FLAGS.items():
        printed = _print(backend)
        assert set(printed["CMAKE_ARGS"].split()) == flags
        # pip's wheel cache does not key on CMAKE_ARGS: a non-native build must never come from it.
        assert "--no-cache-dir" in printed["command"]
    assert _print("native") == {**_print("native"), "CMAKE_ARGS": ""}
    assert "--no-cache-dir" not in _print("native")["command"]
    extra = _print("cuda", "-DCMAKE_CUDA_ARCHITECTURES=90")
    assert extra["CMAKE_ARGS"].split()[-1] == "-DCMAKE_CUDA_ARCHITECTURES=90"  # CMAKE_ARGS adds to the row
    refused = subprocess.run([str(INSTALL_ENGINE), "--print", "metal"], capture_output=True, text=True)
    assert refused.returncode == 2 and "use native, cpu, cuda or rocm" in refused.stderr


def test_the_builder_and_scripts_setup_both_install_through_the_script() -> None:
    text = CONTAINERFILE.read_text()
    runs = [line for line in _instructions(text) if line.startswith("RUN ")]
    engine_runs = [r for r in runs if "llama-cpp-python" in r or "install-engine" in r]
    assert any('CMAKE_ARGS="${CMAKE_ARGS}"' in r and 'scripts/install-engine "${BACKEND}"' in r for r in engine_runs)
    # No second way in: pip never installs llama-cpp-python itself; the ingot install must leave it as it is.
    assert not any(re.search(r"pip install[^&]*llama-cpp-python", r) for r in runs)
    assert any("pip show llama-cpp-python" in r and "test " in r for r in runs)
    # The engine is built before ingot's code is copied in: code changes do not recompile llama.cpp.
    assert text.index("scripts/install-engine \"${BACKEND}\"") < text.index("COPY daemon daemon")
    setup = (REPO / "scripts/setup").read_text()
    assert re.search(r'scripts/install-engine "\$\{INGOT_BACKEND:-native\}"', setup)
    assert setup.index("scripts/install-engine") < setup.index('pip install -q -e "$target"')


def _instructions(text: str) -> list[str]:
    """The Containerfile's instructions, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#")))
    return [line.strip() for line in joined.splitlines() if line.strip()]


def test_the_documented_build_commands_use_known_backends() -> None:
    documented = re.findall(r"--build-arg BACKEND=(\w+)", CONTAINERFILE.read_text())
    documented += re.findall(r"--build-arg BACKEND=(\w+)", (REPO / "docs/kubernetes.md").read_text())
    assert set(documented) == {"cuda", "rocm"}
    for backend in documented:
        _print(backend)


def test_the_runtime_stage_runs_ingot_serve_as_a_user_with_the_settings_it_reads() -> None:
    image = containerfile()
    assert image.entrypoint == ["ingot", "serve"]
    uid, _, gid = image.user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit()
    readable = {*SERVE_ENV.values(), SOCKET_ENV, HOME_ENV}
    ingot_env = {k for k in image.env if k.startswith("INGOT_")}
    assert ingot_env <= readable, f"ingot serve does not read {ingot_env - readable}"
    # The socket is not under INGOT_HOME: the home may be mounted read-only.
    assert not image.env[SOCKET_ENV].startswith(image.env[HOME_ENV] + "/")
    assert "VOLUME" in CONTAINERFILE.read_text() and f'"{image.env[HOME_ENV]}"' in CONTAINERFILE.read_text()


@pytest.mark.parametrize("name", [".dockerignore"])
def test_the_build_context_leaves_out_what_the_image_must_not_carry(name: str) -> None:
    ignored = {line.strip() for line in (REPO / name).read_text().splitlines() if line and not line.startswith("#")}
    assert {".venv", ".git", "*.gguf", "tests"} <= ignored
