"""`ingot hw` and `ingot plan`: through the installed console script, as a user runs them, and through
`ingot.cli.main.main(argv)` in-process where only the command's behaviour is under test (each console
start costs seconds of imports)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingot.cli.main import main
from ingot.registry.synthetic import SyntheticSpec, write_synthetic_gguf

from .conftest import DATA, FakeHost, make_host

INGOT = str(Path(sys.executable).parent / "ingot")
GIB = 2**30


def ingot(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([INGOT, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = SyntheticSpec(n_embd=64, n_layer=4, n_head=4, n_head_kv=2, n_ctx=4096)
    return write_synthetic_gguf(tmp_path_factory.mktemp("model") / "tiny.gguf", spec)


@pytest.fixture(scope="module")
def two_gpu_box(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`ingot hw --json` of the recorded 2x RTX 3090 host (with this machine's real, CPU-only engine), saved."""
    folder = tmp_path_factory.mktemp("box")
    box = make_host(folder)
    box.replay("nvidia-smi", DATA / "nvidia-smi" / "2x-rtx3090.csv")
    done = ingot("hw", "--json", env={**os.environ, **box.env()})
    assert done.returncode == 0, done.stderr
    saved = folder / "box.json"
    saved.write_text(done.stdout)
    return saved


def test_hw_json_on_this_machine() -> None:
    done = ingot("hw", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["format"] == 1
    assert report["cpu"]["logical_cores"] == os.cpu_count()
    assert report["engine"]["installed"] is True
    assert report["engine"]["gpu_offload"] is False  # this machine's llama-cpp-python is a CPU build
    assert any(device["kind"] == "cpu" for device in report["engine"]["devices"])


def test_hw_json_with_recorded_gpus(two_gpu_box: Path) -> None:
    report = json.loads(two_gpu_box.read_text())
    assert [(g["index"], g["name"], g["free_bytes"]) for g in report["gpus"]] == [
        (0, "NVIDIA GeForce RTX 3090", 24231 * 2**20),
        (1, "NVIDIA GeForce RTX 3090", 24231 * 2**20),
    ]
    assert any("found 2 CUDA GPUs" in problem and "-DGGML_CUDA=on" in problem for problem in report["problems"])


def test_hw_text(host: FakeHost, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    host.replay("nvidia-smi", DATA / "nvidia-smi" / "1x-rtx4090.csv")
    for name, value in host.env().items():
        monkeypatch.setenv(name, value)
    assert main(["hw"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    [gpu_line] = [line for line in lines if line.strip().startswith("cuda:0")]
    assert "NVIDIA GeForce RTX 4090" in gpu_line and "24.0 GiB" in gpu_line and gpu_line.rstrip().endswith("no")
    assert "Intel(R) Core(TM) i7-9700K CPU @ 3.60GHz: 4 cores, 8 threads (2 usable)" in out
    assert "RAM 8.0 GiB total, 7.0 GiB available (cgroup limit 8.0 GiB)" in out
    assert "Problems" in out


def test_plan_file_for_a_saved_box(model: Path, two_gpu_box: Path) -> None:
    done = ingot("plan", str(model), "--hw", str(two_gpu_box), "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["model"] == str(model)
    assert plan["n_gpu_layers"] == 5  # 4 blocks + the output layer
    assert plan["tensor_split"] == [5.0, 0.0]  # small enough for one card: the first takes it all
    assert list(plan["per_device_bytes"]) == ["cuda:0"] and plan["per_device_bytes"]["cuda:0"] > 0
    assert plan["engine_can_offload"] is False and plan["effective_n_gpu_layers"] == 0
    assert plan["n_ctx"] == 4096  # Ollama's default, within the model's 4096
    assert any("-DGGML_CUDA=on" in note for note in plan["notes"])


def run_main(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_plan_text(model: Path, two_gpu_box: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ("plan", str(model), "--hw", str(two_gpu_box), "--ctx", "2048", "--parallel", "2")
    code, out, err = run_main(*args, capsys=capsys)
    assert code == 0, err
    assert "context   2048 x 2 slots" in out
    assert "placement 5/5 layers on cuda (the installed engine cannot offload" in out
    assert "engine    n_gpu_layers=0 main_gpu=0 tensor_split=5,0" in out
    assert any(line.startswith("cpu ") and line.rstrip().endswith("yes") for line in out.splitlines())


def test_plan_named_model_uses_its_parameters(
    model: Path, two_gpu_box: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INGOT_HOME", str(tmp_path / "home"))
    (tmp_path / "Modelfile").write_text(f"FROM {model}\nPARAMETER num_ctx 1024\nPARAMETER num_gpu 2\n")
    code, _, err = run_main("create", "tiny", "-f", str(tmp_path / "Modelfile"), capsys=capsys)
    assert code == 0, err
    code, out, err = run_main("plan", "tiny", "--hw", str(two_gpu_box), "--json", capsys=capsys)
    assert code == 0, err
    plan = json.loads(out)
    assert (plan["model"], plan["n_ctx"], plan["n_gpu_layers"]) == ("tiny", 1024, 2)
    code, out, err = run_main(
        "plan", "tiny", "--hw", str(two_gpu_box), "--json", "--ctx", "512", "--num-gpu", "-1", capsys=capsys
    )
    assert code == 0, err
    overridden = json.loads(out)
    assert (overridden["n_ctx"], overridden["n_gpu_layers"]) == (512, 5)


def test_plan_context_too_large(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    small = tmp_path / "small.json"
    small.write_text(
        json.dumps(
            {
                "cpu": {
                    "model": "tiny box",
                    "physical_cores": 1,
                    "logical_cores": 1,
                    "usable_cores": 1,
                    "ram_total_bytes": GIB,
                    "ram_available_bytes": GIB,
                }
            }
        )
    )
    code, out, err = run_main("plan", str(model), "--hw", str(small), "--ctx", "4000000", capsys=capsys)
    assert code == 1
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith("error: context 4000000 does not fit")
    assert "the largest context that fits is" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("missing.gguf",), "error: missing.gguf: no such file"),
        (("library/absent",), "error: model 'absent' not found"),
        (("{model}", "--hw", "nope.json"), "error: nope.json: cannot read"),
        (("{model}", "--hw", "{model}"), "error: {model}: not a JSON text file"),
        (("{model}", "--ctx", "0"), "error: n_ctx must be at least 1"),
    ],
)
def test_plan_errors(
    model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
) -> None:
    monkeypatch.setenv("INGOT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("INGOT_NVML", "0")
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main("plan", *(a.format(model=model) for a in args), capsys=capsys)
    assert code == 1
    assert err.startswith(message.format(model=model)), err
    assert "Traceback" not in err
