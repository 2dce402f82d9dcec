"""Quantize a GGUF model through llama-cpp-python, in a child process, with progress.

llama.cpp opens the weights to quantize them, and some malformed files abort
the process that does so; so the work runs in ``python -m
ingot.registry.quantize``, a child process, and a crash there becomes a
`QuantizeError` here. Everything that can be refused from the header (unknown
type, already-quantized input, rows that do not fit the type's blocks) is
refused before the child starts. The result is written to a temporary file in
the destination folder, checked with `inspect_gguf`, and renamed into place.

Progress: llama.cpp logs one ``[  i/  n] tensor-name ...`` line as it starts
each tensor. The child installs a log callback that turns those into
``tensor i n name`` lines on its stdout; the parent weighs the tensors
finished so far by their size in the source's tensor table, so the big
embedding and output matrices count for what they cost.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType

from ingot.registry.errors import IngotError
from ingot.registry.gguf_info import GGUFInfo, inspect_gguf

__all__ = ["QUANT_TYPES", "QuantType", "QuantizeError", "parse_quant_type", "quantize_gguf"]


class QuantizeError(IngotError, ValueError):
    """Quantization was refused up front or failed in the child process."""


@dataclass(frozen=True)
class QuantType:
    """A quantization recipe: llama.cpp's file type and the ggml type most weights end up in."""

    name: str  # canonical spelling, e.g. "Q4_K_M"
    ftype: int  # LLAMA_FTYPE_MOSTLY_<name>
    main_type: str  # ggml type of most weights, e.g. "Q4_K"

    @property
    def block_size(self) -> int:
        """Rows of a quantized tensor must be a multiple of this many values."""
        return GGML_QUANT_SIZES[GGMLQuantizationType[self.main_type]][0]


def _quant_type(name: str, main_type: str) -> QuantType:
    return QuantType(name=name, ftype=int(LlamaFileType[f"MOSTLY_{name}"]), main_type=main_type)


QUANT_TYPES: Mapping[str, QuantType] = MappingProxyType(
    {
        q.name: q
        for q in (
            _quant_type("Q4_0", "Q4_0"),
            _quant_type("Q4_1", "Q4_1"),
            _quant_type("Q5_0", "Q5_0"),
            _quant_type("Q5_1", "Q5_1"),
            _quant_type("Q8_0", "Q8_0"),
            _quant_type("Q2_K", "Q2_K"),
            _quant_type("Q3_K_S", "Q3_K"),
            _quant_type("Q3_K_M", "Q3_K"),
            _quant_type("Q3_K_L", "Q3_K"),
            _quant_type("Q4_K_S", "Q4_K"),
            _quant_type("Q4_K_M", "Q4_K"),
            _quant_type("Q5_K_S", "Q5_K"),
            _quant_type("Q5_K_M", "Q5_K"),
            _quant_type("Q6_K", "Q6_K"),
            _quant_type("F16", "F16"),
            _quant_type("BF16", "BF16"),
        )
    }
)

_UNQUANTIZED = frozenset({"F32", "F16", "BF16", "F64"})
_PROGRESS_LINE = re.compile(r"^tensor (\d+) (\d+) (\S+)$")
_TENSOR_LOG = re.compile(rb"^\[\s*(\d+)/\s*(\d+)\]\s+(\S+)")
_STDERR_TAIL = 2000
# enum ggml_log_level as the bundled ggml.h has it (llama_cpp/_logger.py's comment is stale).
_LOG_WARN, _LOG_ERROR, _LOG_CONT = 3, 4, 5


def parse_quant_type(name: str) -> QuantType:
    """The recipe called ``name`` (any case, e.g. ``q4_k_m``); an unknown name lists the valid ones."""
    quant = QUANT_TYPES.get(name.strip().upper())
    if quant is None:
        raise QuantizeError(
            f"unknown quantization type {name!r}",
            hint="choose one of: " + ", ".join(q.lower() for q in QUANT_TYPES),
        )
    return quant


def _check_quantizable(info: GGUFInfo, quant: QuantType) -> None:
    already = sorted({t.ggml_type for t in info.tensors if len(t.shape) > 1} - _UNQUANTIZED)
    if already:
        raise QuantizeError(
            f"{info.path}: already quantized ({', '.join(already)}); quantizing again loses quality",
            hint="start from the F16/F32 file",
        )
    block = quant.block_size
    if block == 1:
        return
    for tensor in info.tensors:
        # llama.cpp quantizes the 2-D+ ".weight" tensors; 1-D norms stay F32.
        if len(tensor.shape) > 1 and tensor.name.endswith("weight") and tensor.shape[0] % block:
            raise QuantizeError(
                f"{info.path}: cannot quantize to {quant.name}: tensor {tensor.name!r} has rows of "
                f"{tensor.shape[0]} values, and {quant.main_type} needs rows that are a multiple of {block}",
                hint=(
                    "use q8_0, q4_0 or f16 for models whose widths are not multiples of 256"
                    if block == 256
                    else "use f16 for this model"
                ),
            )


def quantize_gguf(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    ftype: str,
    *,
    progress: Callable[[float], None] | None = None,
    threads: int | None = None,
) -> Path:
    """Quantize ``src`` into ``dst`` as ``ftype`` (e.g. ``"q4_k_m"``) and return ``dst``.

    ``progress`` receives fractions from 0.0 to 1.0. Raises `QuantizeError` for
    a type that cannot apply or a failed run, and `GGUFError` for a bad source.
    """
    quant = parse_quant_type(ftype)
    source = Path(src)
    target = Path(dst)
    info = inspect_gguf(source)
    _check_quantizable(info, quant)
    if target.exists() and target.resolve() == source.resolve():
        raise QuantizeError(f"{target}: the output would overwrite the input", hint="choose another destination")
    if not target.parent.is_dir():
        raise QuantizeError(f"{target}: folder {target.parent} does not exist")
    if threads is not None and threads < 1:
        raise QuantizeError(f"threads must be at least 1, got {threads}")

    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.partial")
    try:
        _run_child(source, tmp, quant, threads or 0, _ByteProgress(info, progress) if progress else None)
        inspect_gguf(tmp)  # llama.cpp wrote it, but nothing unchecked gets a real name
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    if progress is not None:
        progress(1.0)
    return target


class _ByteProgress:
    """Turns "llama.cpp started tensor i of n" into the fraction of tensor bytes already done."""

    def __init__(self, info: GGUFInfo, report: Callable[[float], None]):
        self._sizes = {tensor.name: tensor.n_bytes for tensor in info.tensors}
        self._total = sum(self._sizes.values())
        self._report = report
        self._done = 0
        self._current: str | None = None

    def started(self, index: int, count: int, name: str) -> None:
        if self._current is not None:
            self._done += self._sizes.get(self._current, 0)
        self._current = name
        if self._total and name in self._sizes:
            self._report(min(self._done / self._total, 1.0))
        else:  # a tensor the header did not list: fall back to counting
            self._report(min((index - 1) / count, 1.0) if count else 0.0)


def _run_child(source: Path, tmp: Path, quant: QuantType, threads: int, progress: _ByteProgress | None) -> None:
    command = [sys.executable, "-m", "ingot.registry.quantize", str(source), str(tmp), str(quant.ftype), str(threads)]
    # stderr goes to a file, not a pipe, so a chatty child can never block on it
    # while the parent is reading stdout.
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL, text=True)
        try:
            assert child.stdout is not None
            for line in child.stdout:
                match = _PROGRESS_LINE.match(line.strip())
                if match and progress is not None:
                    progress.started(int(match.group(1)), int(match.group(2)), match.group(3))
            returncode = child.wait()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        if returncode != 0:
            errors.seek(0)
            tail = errors.read().decode("utf-8", errors="replace")[-_STDERR_TAIL:].strip()
            how = f"was killed by signal {-returncode}" if returncode < 0 else f"failed (exit status {returncode})"
            # The last line llama.cpp logged is the one that says why.
            last = tail.splitlines()[-1] if tail else "no error output"
            raise QuantizeError(f"{source}: quantizing to {quant.name} {how}: {last}")


# ---------------------------------------------------------------------------
# the child process


def _child_main(argv: list[str]) -> int:
    import ctypes

    import llama_cpp

    source, output, ftype, threads = argv[0], argv[1], int(argv[2]), int(argv[3])

    last_level = [0]  # ggml sends GGML_LOG_LEVEL_CONT (5) for the rest of a line

    def on_log(level: int, text: bytes | None, user_data: ctypes.c_void_p) -> None:
        if level != _LOG_CONT:
            last_level[0] = level
        if not text:
            return
        match = _TENSOR_LOG.match(text)
        if match:
            index, count, name = (group.decode("utf-8", errors="replace") for group in match.groups())
            print(f"tensor {index} {count} {name}", flush=True)
        elif last_level[0] in (_LOG_WARN, _LOG_ERROR):  # the parent shows these if we fail
            sys.stderr.write(text.decode("utf-8", errors="replace"))
            sys.stderr.flush()

    # The callback object must outlive every native call that may log.
    callback = llama_cpp.llama_log_callback(on_log)
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads
    # A failure has already been logged (as an error) by llama.cpp itself.
    return 0 if llama_cpp.llama_model_quantize(source.encode(), output.encode(), ctypes.byref(params)) == 0 else 1


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
