"""The typed result of hardware detection, and its JSON form (`ingot hw --json`, `ingot plan --hw`).

Everything here is a frozen dataclass so a report can be passed between the
probe, the planner and the scheduler without anyone changing it underneath the
others. The JSON form round-trips: `HardwareReport.from_json(r.to_json()) == r`,
which is what lets a user save one box's report and plan against it elsewhere.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field
from typing import Any, Literal, Mapping

Backend = Literal["cuda", "rocm", "metal"]
GPU_BACKENDS: tuple[str, ...] = ("cuda", "rocm", "metal")

# Bumped when a field changes meaning; readers refuse versions they do not know.
REPORT_FORMAT_VERSION = 1


class HardwareReportError(ValueError):
    """A saved hardware report (``--hw FILE.json``) that cannot be read."""

    def __init__(self, source: str, message: str, hint: str = "") -> None:
        self.source = source
        self.message = message
        self.hint = hint
        super().__init__(f"{source}: {message}; {hint}" if hint else f"{source}: {message}")


@dataclass(frozen=True)
class GPUDevice:
    """One GPU as the engine will number it.

    ``index`` is the ordinal after ``CUDA_VISIBLE_DEVICES`` / ``HIP_VISIBLE_DEVICES``
    filtering, i.e. the number llama.cpp's ``main_gpu`` and ``tensor_split``
    refer to; ``uuid`` identifies the physical card. Metal devices report the
    working-set limit the OS allows as both total and free memory.
    """

    index: int
    backend: Backend
    name: str
    total_bytes: int
    free_bytes: int
    compute_capability: str | None = None
    driver: str | None = None
    uuid: str | None = None

    @property
    def key(self) -> str:
        """Stable label used in plans and tables, e.g. ``cuda:1``."""
        return f"{self.backend}:{self.index}"

    @property
    def unified_memory(self) -> bool:
        """True when the GPU's memory is the host's RAM (Apple silicon)."""
        return self.backend == "metal"


@dataclass(frozen=True)
class CPUInfo:
    """Cores and RAM the process may actually use (affinity and cgroup limits applied)."""

    model: str
    physical_cores: int
    logical_cores: int
    usable_cores: int
    ram_total_bytes: int
    ram_available_bytes: int
    cpu_quota: float | None = None
    memory_limit_bytes: int | None = None

    @property
    def usable_threads(self) -> int:
        """Threads worth running: the affinity set, capped by a cgroup CPU quota."""
        threads = self.usable_cores
        if self.cpu_quota is not None:
            threads = min(threads, max(1, int(-(-self.cpu_quota // 1))))
        return max(1, threads)


@dataclass(frozen=True)
class EngineDevice:
    """One ggml backend device the installed llama-cpp-python can use."""

    name: str
    description: str
    kind: str  # "cpu" | "gpu" | "igpu" | "accel"
    backend: str  # ggml backend registry name, e.g. "CUDA", "ROCm", "Metal", "CPU"
    free_bytes: int
    total_bytes: int


# ggml registry names → the GPU backend family they drive.
_REGISTRY_BACKENDS = {"cuda": "cuda", "rocm": "rocm", "hip": "rocm", "metal": "metal", "mtl": "metal"}


@dataclass(frozen=True)
class EngineSupport:
    """What the installed engine (llama-cpp-python) can do on this machine."""

    installed: bool
    version: str | None
    gpu_offload: bool
    devices: tuple[EngineDevice, ...] = ()
    error: str | None = None

    @property
    def gpu_backends(self) -> frozenset[str]:
        """Backend families with at least one non-CPU device (``cuda``, ``rocm``, ``metal``, ``vulkan``...)."""
        found = set()
        for device in self.devices:
            if device.kind == "cpu" or device.kind == "accel":
                continue
            registry = device.backend.lower()
            found.add(_REGISTRY_BACKENDS.get(registry, registry))
        return frozenset(found)

    def can_offload_to(self, backend: str) -> bool:
        """Whether layers can go to a ``backend`` GPU; Vulkan builds drive CUDA and ROCm cards too."""
        if not self.gpu_offload:
            return False
        families = self.gpu_backends
        if backend in families:
            return True
        return backend in ("cuda", "rocm") and "vulkan" in families


@dataclass(frozen=True)
class HardwareReport:
    """Everything detection found. ``problems`` lists probes that failed (never fatal);
    ``notes`` are facts worth telling the user that are not failures."""

    cpu: CPUInfo
    gpus: tuple[GPUDevice, ...]
    engine: EngineSupport
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def gpus_for(self, backend: str) -> tuple[GPUDevice, ...]:
        return tuple(g for g in self.gpus if g.backend == backend)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = REPORT_FORMAT_VERSION
        return data

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_json(cls, text: str, *, source: str = "<hardware report>") -> HardwareReport:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise HardwareReportError(
                f"{source}:{exc.lineno}:{exc.colno}",
                f"not valid JSON: {exc.msg}",
                "save a report with `ingot hw --json > FILE.json`",
            ) from None
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<hardware report>") -> HardwareReport:
        hint = "save a report with `ingot hw --json > FILE.json`"
        if not isinstance(data, Mapping):
            raise HardwareReportError(source, "expected a JSON object at the top level", hint)
        version = data.get("format", REPORT_FORMAT_VERSION)
        if version != REPORT_FORMAT_VERSION:
            raise HardwareReportError(
                source, f"report format {version!r} is not supported (this ingot reads {REPORT_FORMAT_VERSION})", hint
            )
        try:
            cpu = _build(CPUInfo, data["cpu"], "cpu")
            gpus = tuple(_build(GPUDevice, g, f"gpus[{i}]") for i, g in enumerate(data.get("gpus", ())))
            engine_data = dict(data.get("engine") or {"installed": False, "version": None, "gpu_offload": False})
            devices = tuple(
                _build(EngineDevice, d, f"engine.devices[{i}]") for i, d in enumerate(engine_data.pop("devices", ()))
            )
            engine = _build(EngineSupport, {**engine_data, "devices": devices}, "engine")
        except KeyError as exc:
            raise HardwareReportError(source, f"missing field {exc.args[0]!r}", hint) from None
        except _FieldError as exc:
            raise HardwareReportError(source, str(exc), hint) from None
        for gpu in gpus:
            if gpu.backend not in GPU_BACKENDS:
                expected = ", ".join(GPU_BACKENDS)
                raise HardwareReportError(
                    source, f"gpus[{gpu.index}].backend is {gpu.backend!r}; expected one of {expected}", hint
                )
        return cls(
            cpu=cpu,
            gpus=gpus,
            engine=engine,
            problems=tuple(str(p) for p in data.get("problems", ())),
            notes=tuple(str(n) for n in data.get("notes", ())),
        )


class _FieldError(ValueError):
    pass


def _build(kind: type, raw: Any, where: str) -> Any:
    """Construct a dataclass from a JSON object, naming the place of any wrong or missing field."""
    if not isinstance(raw, Mapping):
        raise _FieldError(f"{where}: expected an object")
    names = {f.name: f for f in kind.__dataclass_fields__.values()}  # type: ignore[attr-defined]
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise _FieldError(f"{where}: unknown field {unknown[0]!r}")
    values = {}
    for name, spec in names.items():
        if name not in raw:
            if spec.default is MISSING and spec.default_factory is MISSING:
                raise _FieldError(f"{where}: missing field {name!r}")
            continue
        value = raw[name]
        expected = str(spec.type)
        if expected.startswith("int") and not (isinstance(value, int) and not isinstance(value, bool)):
            if not (expected.endswith("None") and value is None):
                raise _FieldError(f"{where}.{name}: expected an integer, got {value!r}")
        if expected == "bool" and not isinstance(value, bool):
            raise _FieldError(f"{where}.{name}: expected true or false, got {value!r}")
        if expected == "str" and not isinstance(value, str):
            raise _FieldError(f"{where}.{name}: expected a string, got {value!r}")
        if isinstance(value, list):
            value = tuple(value)
        values[name] = value
    return kind(**values)
