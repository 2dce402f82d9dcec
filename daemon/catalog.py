"""From a model name in a request to what the scheduler loads: package, GGUF facts, spec and plan.

`Catalog.package(name)` finds the package among the mounted ones (`ingot
serve --model-dir`, read once at start) or reads it from the store
(ModelNotFoundError when absent); `spec()` fixes the load-time settings a request asks for;
`plan()` asks the offload planner where the layers go given the memory free
right now, and chains the planner's out-of-memory retry ladder.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ingot.daemon.engine.types import LoadOptions
from ingot.daemon.hardware.report import HardwareReport
from ingot.daemon.lifecycle import LoadPlan, ModelSpec
from ingot.daemon.options import LoadSettings
from ingot.daemon.planner import ModelShape, Plan, next_attempt, plan_offload
from ingot.registry.errors import ModelNotFoundError
from ingot.registry.gguf_info import GGUFInfo, inspect_gguf
from ingot.registry.package import Package, load_package
from ingot.registry.reference import Reference
from ingot.registry.store import Store

__all__ = ["Catalog", "TokenTexts"]


@dataclass(frozen=True)
class TokenTexts:
    """The BOS and EOS token strings, for Jinja chat templates that print them."""

    bos: str
    eos: str


class Catalog:
    """Resolves names against the store and plans loads; thread safe (caches are per weights digest)."""

    def __init__(
        self,
        store: Store,
        *,
        hardware: Callable[[], HardwareReport],
        n_parallel: int,
        interactive_slots: int = 0,
        mounted: Mapping[str, Package] | None = None,
    ) -> None:
        self.store = store
        # Packages mounted as folders, by normalized name; they shadow the store's tags of the same name.
        self.mounted: Mapping[str, Package] = dict(mounted or {})
        self._hardware = hardware
        self._n_parallel = n_parallel
        self._interactive_slots = interactive_slots
        self._lock = threading.Lock()
        self._infos: dict[str, GGUFInfo] = {}
        self._token_texts: dict[str, TokenTexts] = {}

    @property
    def n_parallel(self) -> int:
        """Request slots a model is loaded with (the daemon's --parallel)."""
        return self._n_parallel

    def reference(self, name: str) -> Reference:
        return Reference.parse(name.strip())

    def package(self, name: str) -> Package:
        """The package `name` refers to; raises ReferenceError or ModelNotFoundError."""
        ref = self.reference(name)
        mounted = self.mounted.get(ref.without_digest().tagged)
        if mounted is None:
            return load_package(self.store, ref)
        if ref.digest is not None and ref.digest != mounted.digest:
            raise ModelNotFoundError(
                f"model '{ref.short}' not found: the mounted {mounted.reference.short} is {mounted.digest}",
                hint="ask for the model without a digest, or mount that version",
            )
        return mounted

    def info(self, package: Package) -> GGUFInfo:
        """GGUF header facts of the package's weights (read once per weights digest)."""
        key = package.weights_digest
        with self._lock:
            cached = self._infos.get(key)
        if cached is not None:
            return cached
        info = inspect_gguf(package.weights)
        with self._lock:
            self._infos[key] = info
        return info

    def token_texts(self, package: Package) -> TokenTexts:
        """BOS/EOS strings from the GGUF vocabulary (read once per weights digest)."""
        key = package.weights_digest
        with self._lock:
            cached = self._token_texts.get(key)
        if cached is not None:
            return cached
        info = self.info(package)
        texts = _read_token_texts(package.weights, info.bos_token_id, info.eos_token_id)
        with self._lock:
            self._token_texts[key] = texts
        return texts

    def spec(self, package: Package, settings: LoadSettings) -> ModelSpec:
        return ModelSpec(
            name=package.reference.without_digest().tagged,
            digest=package.digest,
            model_path=str(package.weights),
            adapters=tuple(str(p) for p in package.adapters),
            settings=settings,
            n_parallel=self._n_parallel,
        )

    def plan(self, spec: ModelSpec) -> LoadPlan:
        """Where the model goes with the memory free now; raises PlanError when it cannot fit."""
        info = inspect_gguf(spec.model_path)
        shape = ModelShape.from_gguf_info(info)
        hardware = self._hardware()
        settings = spec.settings
        plan = plan_offload(
            shape,
            hardware,
            n_ctx=settings.num_ctx,
            n_parallel=spec.n_parallel,
            num_gpu=settings.num_gpu,
            n_batch=settings.num_batch,
        )
        return self._load_plan(spec, shape, hardware, plan)

    def _load_plan(self, spec: ModelSpec, shape: ModelShape, hardware: HardwareReport, plan: Plan) -> LoadPlan:
        settings = spec.settings
        options = LoadOptions(
            model_path=spec.model_path,
            n_ctx=plan.n_ctx,
            n_parallel=plan.n_parallel,
            interactive_slots=min(self._interactive_slots, plan.n_parallel - 1),
            n_batch=plan.n_batch,
            n_gpu_layers=plan.effective_n_gpu_layers,
            # An explicit main_gpu wins; otherwise the device holding most layers.
            main_gpu=settings.main_gpu if settings.main_gpu else plan.main_gpu,
            tensor_split=plan.tensor_split,
            n_threads=settings.num_thread,
            use_mmap=settings.use_mmap,
            adapters=spec.adapters,
        )
        cpu = next((u for u in plan.usage if u.key == "cpu"), None)
        mapped = cpu.weights_bytes if (cpu is not None and settings.use_mmap) else 0

        def retry() -> LoadPlan | None:
            following = next_attempt(plan, shape, hardware)
            return None if following is None else self._load_plan(spec, shape, hardware, following)

        return LoadPlan(
            options=options,
            ram_bytes=plan.ram_bytes,
            vram_bytes=sum(plan.per_device_bytes.values()) if plan.effective_n_gpu_layers else 0,
            mapped_bytes=mapped,
            total_layers=shape.block_count,
            notes=plan.notes,
            device_bytes=_device_bytes(plan),
            next_attempt=retry,
        )


def _device_bytes(plan: Plan) -> tuple[tuple[str, int], ...]:
    gpus = tuple(plan.per_device_bytes.items()) if plan.effective_n_gpu_layers else ()
    return (("cpu", plan.ram_bytes), *((key, size) for key, size in gpus if size > 0))


def _read_token_texts(path: Path, bos_id: int | None, eos_id: int | None) -> TokenTexts:
    # The header inspector summarises long arrays; gguf's reader memory-maps
    # the file and gives the vocabulary, without touching tensor data.
    import gguf

    reader = gguf.GGUFReader(path, "r")
    field = reader.get_field("tokenizer.ggml.tokens")

    def text(token_id: int | None) -> str:
        if field is None or token_id is None or not 0 <= token_id < len(field.data):
            return ""
        part = field.parts[field.data[token_id]]
        return bytes(part).decode("utf-8", errors="replace")

    return TokenTexts(bos=text(bos_id), eos=text(eos_id))
