"""Read a GGUF file's header, metadata and tensor table without loading its weights.

`inspect_gguf` is the gate every GGUF passes before llama.cpp sees it: some
malformed files abort the process that loads them (duplicate token strings
hit a GGML_ASSERT), others make it read out of bounds. Everything that can be
checked from the header is checked here, and each problem becomes one
`GGUFError` that names the file, says what is wrong and what to do.

The parser is our own, over a read-only mmap, and uses the `gguf` package for
the format's constants (value types, tensor types and their block sizes,
llama file types). `gguf.GGUFReader` is not used because it builds numpy views
for every element of every metadata array (seconds for a 32k-token
vocabulary, where this parser needs tens of milliseconds), and it silently
returns short reads at end of file instead of reporting truncation. Only the
metadata and tensor table are touched; tensor data is never read.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType, Keys, LlamaFileType

from ingot.registry.errors import IngotError

__all__ = [
    "ArraySummary",
    "GGUFError",
    "GGUFInfo",
    "TensorInfo",
    "inspect_gguf",
]

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
_HEADER_SIZE = 24  # magic, version, tensor count, kv count
_DEFAULT_ALIGNMENT = 32
_MAX_DIMS = 4  # GGML_MAX_DIMS
_INT64_MAX = 2**63 - 1
# Arrays up to this many elements are kept in `metadata` (per-layer head
# counts and the like); longer ones (tokens, scores, merges) are summarised.
_SMALL_ARRAY = 256
# Arrays of arrays are legal GGUF but no model uses more than a level or two (llama.cpp reads none); the
# reader recurses once per level, so a hostile file 2000 levels deep would otherwise end in RecursionError.
MAX_ARRAY_NESTING = 16
# The fewest bytes a metadata entry / tensor table entry can occupy; a count
# that would need more than the whole file is corrupt, not merely cut short.
_MIN_KV_BYTES = 8 + 4 + 1
_MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8

_SCALAR_FORMATS: dict[GGUFValueType, str] = {
    GGUFValueType.UINT8: "<B",
    GGUFValueType.INT8: "<b",
    GGUFValueType.UINT16: "<H",
    GGUFValueType.INT16: "<h",
    GGUFValueType.UINT32: "<I",
    GGUFValueType.INT32: "<i",
    GGUFValueType.FLOAT32: "<f",
    GGUFValueType.BOOL: "<?",
    GGUFValueType.UINT64: "<Q",
    GGUFValueType.INT64: "<q",
    GGUFValueType.FLOAT64: "<d",
}
_INTEGER_TYPES = frozenset(
    {
        GGUFValueType.UINT8,
        GGUFValueType.INT8,
        GGUFValueType.UINT16,
        GGUFValueType.INT16,
        GGUFValueType.UINT32,
        GGUFValueType.INT32,
        GGUFValueType.UINT64,
        GGUFValueType.INT64,
    }
)

GGUFErrorReason = Literal[
    "unreadable",
    "bad_magic",
    "unsupported_version",
    "truncated",
    "data_past_eof",
    "duplicate_token",
    "absurd_count",
    "missing_key",
    "malformed",
]


class GGUFError(IngotError, ValueError):
    """A GGUF file that must not be handed to llama.cpp.

    ``str()`` is one line: ``<path>: <message>; <hint>``. ``reason`` says which
    check failed, ``message`` is the bare message.
    """

    def __init__(self, path: str | os.PathLike[str], reason: GGUFErrorReason, message: str, hint: str | None = None):
        super().__init__(f"{path}: {message}", hint=hint)
        self.path = str(path)
        self.reason: GGUFErrorReason = reason
        self.message = message


@dataclass(frozen=True)
class ArraySummary:
    """A metadata array too long to keep (token lists, scores, merges): its element type and length."""

    element_type: str
    length: int


MetadataValue = int | float | bool | str | tuple[Any, ...] | ArraySummary


@dataclass(frozen=True)
class TensorInfo:
    """One entry of the tensor table; `shape` is in ggml order (ne0 first), `offset` is absolute in the file."""

    name: str
    shape: tuple[int, ...]
    ggml_type: str
    n_bytes: int
    offset: int

    @property
    def n_elements(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "type": self.ggml_type,
            "n_bytes": self.n_bytes,
            "offset": self.offset,
        }


@dataclass(frozen=True)
class GGUFInfo:
    """What a GGUF file holds, read from its header alone."""

    path: Path
    file_size: int
    version: int
    architecture: str
    name: str | None
    parameter_count: int
    file_type: str | None  # llama.cpp's LLAMA_FTYPE name without prefix: "Q4_K_M", "F16", "F32"
    quantization: str | None  # the ggml type holding most weights: "Q4_K", "F16"
    context_length: int | None
    block_count: int | None
    embedding_length: int | None
    feed_forward_length: int | None
    head_count: int | None
    head_count_kv: int | None
    key_length: int | None
    value_length: int | None
    vocab_size: int | None
    tokenizer_model: str | None
    bos_token_id: int | None
    eos_token_id: int | None
    chat_template: str | None
    layer_bytes: tuple[int, ...]
    token_embd_bytes: int
    output_bytes: int
    tied_embeddings: bool
    other_bytes: int
    tensor_data_offset: int
    tensors: tuple[TensorInfo, ...] = field(repr=False)
    metadata: Mapping[str, MetadataValue] = field(repr=False)
    # The longest token piece in bytes (None without a vocabulary): no token covers more of a prompt than that
    # for the llama (SPM) and gpt2 (BPE) tokenizers, which lets the daemon refuse a hopeless prompt untokenized.
    longest_token_bytes: int | None = None

    @property
    def tensor_bytes(self) -> int:
        return sum(self.layer_bytes) + self.token_embd_bytes + self.output_bytes + self.other_bytes

    def to_json(self, *, tensors: bool = False) -> dict[str, Any]:
        """A JSON-ready dict; the tensor table is summarised by type unless ``tensors`` is true."""
        type_counts: dict[str, int] = {}
        for tensor in self.tensors:
            type_counts[tensor.ggml_type] = type_counts.get(tensor.ggml_type, 0) + 1
        out: dict[str, Any] = {
            "path": str(self.path),
            "file_size": self.file_size,
            "version": self.version,
            "architecture": self.architecture,
            "name": self.name,
            "parameter_count": self.parameter_count,
            "file_type": self.file_type,
            "quantization": self.quantization,
            "context_length": self.context_length,
            "block_count": self.block_count,
            "embedding_length": self.embedding_length,
            "feed_forward_length": self.feed_forward_length,
            "head_count": self.head_count,
            "head_count_kv": self.head_count_kv,
            "key_length": self.key_length,
            "value_length": self.value_length,
            "vocab_size": self.vocab_size,
            "tokenizer_model": self.tokenizer_model,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "chat_template": self.chat_template,
            "layer_bytes": list(self.layer_bytes),
            "token_embd_bytes": self.token_embd_bytes,
            "output_bytes": self.output_bytes,
            "tied_embeddings": self.tied_embeddings,
            "other_bytes": self.other_bytes,
            "tensor_data_offset": self.tensor_data_offset,
            "tensor_count": len(self.tensors),
            "tensor_types": dict(sorted(type_counts.items())),
            "metadata": {key: _metadata_to_json(value) for key, value in self.metadata.items()},
        }
        if tensors:
            out["tensors"] = [tensor.to_json() for tensor in self.tensors]
        return out


def _metadata_to_json(value: MetadataValue) -> Any:
    if isinstance(value, ArraySummary):
        return {"array": value.element_type, "length": value.length}
    if isinstance(value, tuple):
        return [_metadata_to_json(item) for item in value]
    return value


# ---------------------------------------------------------------------------
# the low-level reader


class _Reader:
    """A bounds-checked cursor over the mapped file; every read past the end becomes a GGUFError."""

    def __init__(self, path: Path, data: mmap.mmap | bytes, size: int):
        self.path = path
        self.data = data
        self.size = size
        self.pos = 0

    def fail(self, reason: GGUFErrorReason, message: str, hint: str | None = None) -> GGUFError:
        return GGUFError(self.path, reason, message, hint)

    def need(self, n_bytes: int, what: str) -> None:
        end = self.pos + n_bytes
        if end > self.size:
            raise self.fail(
                "truncated",
                f"truncated file: {what} runs past the end of the file "
                f"(needs {end:,} bytes, the file has {self.size:,})",
                "the file was cut short; download or copy it again",
            )

    def check_count(self, count: int, min_bytes_each: int, what: str) -> None:
        needed = count * min_bytes_each
        if needed > self.size:
            raise self.fail(
                "absurd_count",
                f"absurd count: {what} is {count:,}, which needs at least {needed:,} bytes, "
                f"but the whole file is {self.size:,} bytes",
                "the header is corrupt (or the file is cut short); get a fresh copy of the file",
            )

    def scalar(self, fmt: str, n_bytes: int, what: str) -> Any:
        self.need(n_bytes, what)
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += n_bytes
        return value

    def u32(self, what: str) -> int:
        return int(self.scalar("<I", 4, what))

    def u64(self, what: str) -> int:
        return int(self.scalar("<Q", 8, what))

    def string(self, what: str) -> bytes:
        length = self.u64(f"the length of {what}")
        self.check_count(length, 1, f"the length of {what}")
        self.need(length, what)
        raw = bytes(self.data[self.pos : self.pos + length])
        self.pos += length
        return raw

    def value_type(self, raw: int, what: str) -> GGUFValueType:
        try:
            return GGUFValueType(raw)
        except ValueError:
            raise self.fail("malformed", f"unknown metadata value type {raw} for {what}") from None

    def value(self, vtype: GGUFValueType, key: str, depth: int = 0) -> MetadataValue:
        fmt = _SCALAR_FORMATS.get(vtype)
        if fmt is not None:
            value = self.scalar(fmt, struct.calcsize(fmt), f"the value of {key!r}")
            return bool(value) if vtype == GGUFValueType.BOOL else value
        if vtype == GGUFValueType.STRING:
            return self.string(f"the value of {key!r}").decode("utf-8", errors="replace")
        return self.array(key, depth)

    def array(self, key: str, depth: int = 0) -> tuple[Any, ...] | ArraySummary:
        if depth >= MAX_ARRAY_NESTING:
            raise self.fail(
                "malformed",
                f"metadata {key!r} nests arrays more than {MAX_ARRAY_NESTING} levels deep",
                "no model needs that; the file is corrupt or made to crash readers: get a fresh copy of it",
            )
        element_type = self.value_type(self.u32(f"the element type of {key!r}"), f"the elements of {key!r}")
        length = self.u64(f"the length of array {key!r}")
        fmt = _SCALAR_FORMATS.get(element_type)
        self.check_count(length, struct.calcsize(fmt) if fmt else 8, f"the length of array {key!r}")
        if length <= _SMALL_ARRAY:
            return tuple(self.value(element_type, key, depth + 1) for _ in range(length))
        if fmt is not None:
            n_bytes = length * struct.calcsize(fmt)
            self.need(n_bytes, f"array {key!r}")
            self.pos += n_bytes
        elif element_type == GGUFValueType.STRING:
            self.strings(key, length, keep=False)
        else:
            for index in range(length):
                self.skip_value(element_type, f"{key}[{index}]", depth + 1)
        return ArraySummary(element_type.name.lower(), length)

    def skip_value(self, vtype: GGUFValueType, key: str, depth: int = 0) -> None:
        fmt = _SCALAR_FORMATS.get(vtype)
        if fmt is not None:
            n_bytes = struct.calcsize(fmt)
            self.need(n_bytes, f"the value of {key!r}")
            self.pos += n_bytes
        elif vtype == GGUFValueType.STRING:
            length = self.u64(f"the length of {key!r}")
            self.check_count(length, 1, f"the length of {key!r}")
            self.need(length, f"the value of {key!r}")
            self.pos += length
        else:
            self.array(key, depth)

    def string_array(self, key: str) -> list[bytes]:
        """Every element of a string array, raw: the token list is needed whole for the duplicate check."""
        length = self.u64(f"the length of array {key!r}")
        self.check_count(length, 8, f"the length of array {key!r}")
        return self.strings(key, length, keep=True)

    def strings(self, key: str, length: int, *, keep: bool) -> list[bytes]:
        data, size, pos = self.data, self.size, self.pos
        unpack = struct.Struct("<Q").unpack_from
        items: list[bytes] = []
        append = items.append
        # A tight loop: vocabularies and merge lists run to 250k entries.
        for index in range(length):
            if pos + 8 > size:
                self.pos = pos
                self.need(8, f"{key}[{index}]")
            (n,) = unpack(data, pos)
            pos += 8
            if pos + n > size:
                self.pos = pos
                self.check_count(n, 1, f"the length of {key}[{index}]")
                self.need(n, f"{key}[{index}]")
            if keep:
                append(bytes(data[pos : pos + n]))
            pos += n
        self.pos = pos
        return items


# ---------------------------------------------------------------------------
# inspection


def _open(path: Path) -> tuple[int, Any]:
    try:
        if not path.exists():
            raise GGUFError(path, "unreadable", "no such file", "check the path")
        if not path.is_file():
            raise GGUFError(path, "unreadable", "not a regular file", "point at the .gguf file itself")
        handle = open(path, "rb")
    except OSError as exc:
        raise GGUFError(path, "unreadable", f"cannot read the file: {exc.strerror or exc}") from None
    return os.fstat(handle.fileno()).st_size, handle


def inspect_gguf(path: str | os.PathLike[str]) -> GGUFInfo:
    """Read and check ``path``'s header, metadata and tensor table; `GGUFError` if llama.cpp must not see it."""
    file_path = Path(path)
    size, handle = _open(file_path)
    with handle:
        if size < _HEADER_SIZE:
            head = handle.read(_HEADER_SIZE)
            if len(head) >= 4 and head[:4] != GGUF_MAGIC:
                raise _bad_magic(file_path, head)
            raise GGUFError(
                file_path,
                "truncated",
                f"truncated file: {size} bytes is shorter than the {_HEADER_SIZE}-byte GGUF header",
                "the file was cut short; download or copy it again",
            )
        try:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            raise GGUFError(file_path, "unreadable", f"cannot map the file: {exc}") from None
        with mapped:
            return _parse(_Reader(file_path, mapped, size))


def _bad_magic(path: Path, head: bytes) -> GGUFError:
    return GGUFError(
        path,
        "bad_magic",
        f"not a GGUF file: starts with {bytes(head[:4])!r}, expected {GGUF_MAGIC!r}",
        "convert the model to GGUF first (llama.cpp's convert_hf_to_gguf.py), or point at the .gguf file",
    )


def _parse(reader: _Reader) -> GGUFInfo:
    path = reader.path
    magic = bytes(reader.data[:4])
    if magic != GGUF_MAGIC:
        raise _bad_magic(path, magic)
    reader.pos = 4
    version = reader.u32("the version")
    if version not in SUPPORTED_VERSIONS:
        swapped = int.from_bytes(version.to_bytes(4, "little"), "big")
        detail = " (a big-endian file)" if swapped in SUPPORTED_VERSIONS else ""
        raise GGUFError(
            path,
            "unsupported_version",
            f"unsupported GGUF version {version}{detail}; ingot reads versions "
            + " and ".join(str(v) for v in SUPPORTED_VERSIONS),
            "re-convert the model with a current llama.cpp (convert_hf_to_gguf.py)",
        )
    tensor_count = reader.u64("the tensor count")
    kv_count = reader.u64("the metadata count")
    reader.check_count(tensor_count, _MIN_TENSOR_INFO_BYTES, "the tensor count")
    reader.check_count(kv_count, _MIN_KV_BYTES, "the metadata count")

    metadata: dict[str, MetadataValue] = {}
    tokens: list[bytes] | None = None
    for index in range(kv_count):
        raw_key = reader.string(f"metadata key #{index}")
        try:
            key = raw_key.decode("utf-8")
        except UnicodeDecodeError:
            raise reader.fail("malformed", f"metadata key #{index} is not valid UTF-8: {raw_key[:40]!r}") from None
        if key in metadata:
            raise reader.fail("malformed", f"metadata key {key!r} appears twice")
        vtype = reader.value_type(reader.u32(f"the type of {key!r}"), repr(key))
        if key == Keys.Tokenizer.LIST and vtype == GGUFValueType.ARRAY:
            element_type = reader.value_type(reader.u32(f"the element type of {key!r}"), repr(key))
            if element_type != GGUFValueType.STRING:
                raise reader.fail("malformed", f"{key!r} must be an array of strings, not of {element_type.name}")
            tokens = reader.string_array(key)
            metadata[key] = ArraySummary("string", len(tokens))
        else:
            metadata[key] = reader.value(vtype, key)

    alignment = _alignment(reader, metadata)
    tensors = _tensor_table(reader, tensor_count)
    data_offset = -(-reader.pos // alignment) * alignment
    placed = _place_tensors(reader, tensors, data_offset, alignment)

    architecture = _required_string(reader, metadata, Keys.General.ARCHITECTURE)
    _check_required_keys(reader, metadata, architecture)
    if tokens is not None:
        _check_tokens(reader, metadata, tokens)
    return _summarise(reader, metadata, architecture, version, placed, data_offset, tokens)


def _alignment(reader: _Reader, metadata: Mapping[str, MetadataValue]) -> int:
    value = metadata.get(Keys.General.ALIGNMENT, _DEFAULT_ALIGNMENT)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0 or value & (value - 1):
        raise reader.fail("malformed", f"{Keys.General.ALIGNMENT} must be a positive power of two, got {value!r}")
    return value


@dataclass(frozen=True)
class _RawTensor:
    name: str
    shape: tuple[int, ...]
    ggml_type: GGMLQuantizationType
    relative_offset: int


def _tensor_table(reader: _Reader, count: int) -> list[_RawTensor]:
    tensors: list[_RawTensor] = []
    seen: set[str] = set()
    for index in range(count):
        what = f"tensor table entry #{index}"
        name = reader.string(f"the name of {what}").decode("utf-8", errors="replace")
        if name in seen:
            raise reader.fail("malformed", f"tensor {name!r} appears twice in the tensor table")
        seen.add(name)
        n_dims = reader.u32(f"the dimension count of tensor {name!r}")
        if not 1 <= n_dims <= _MAX_DIMS:
            raise reader.fail("malformed", f"tensor {name!r} has {n_dims} dimensions; ggml allows 1 to {_MAX_DIMS}")
        shape = tuple(reader.u64(f"the shape of tensor {name!r}") for _ in range(n_dims))
        raw_type = reader.u32(f"the type of tensor {name!r}")
        try:
            ggml_type = GGMLQuantizationType(raw_type)
        except ValueError:
            raise reader.fail("malformed", f"tensor {name!r} has unknown ggml type {raw_type}") from None
        if ggml_type not in GGML_QUANT_SIZES:
            raise reader.fail("malformed", f"tensor {name!r} has ggml type {ggml_type.name}, which has no known size")
        offset = reader.u64(f"the data offset of tensor {name!r}")
        tensors.append(_RawTensor(name, shape, ggml_type, offset))
    return tensors


def _place_tensors(
    reader: _Reader, tensors: list[_RawTensor], data_offset: int, alignment: int
) -> tuple[TensorInfo, ...]:
    placed: list[TensorInfo] = []
    furthest: tuple[int, str] = (data_offset, "")
    for raw in tensors:
        block_size, type_size = GGML_QUANT_SIZES[raw.ggml_type]
        n_elements = 1
        for dim in raw.shape:
            n_elements *= dim
        if n_elements > _INT64_MAX:
            raise reader.fail("absurd_count", f"tensor {raw.name!r} claims shape {list(raw.shape)}, too large to exist")
        if raw.shape[0] % block_size:
            raise reader.fail(
                "malformed",
                f"tensor {raw.name!r}: rows of {raw.shape[0]} values cannot hold whole "
                f"{raw.ggml_type.name} blocks of {block_size}",
            )
        if raw.relative_offset % alignment:
            raise reader.fail(
                "malformed",
                f"tensor {raw.name!r} starts at offset {raw.relative_offset}, not a multiple of {alignment}",
            )
        n_bytes = n_elements // block_size * type_size
        start = data_offset + raw.relative_offset
        placed.append(TensorInfo(raw.name, raw.shape, raw.ggml_type.name, n_bytes, start))
        furthest = max(furthest, (start + n_bytes, raw.name))
    end, name = furthest
    if end > reader.size:
        raise reader.fail(
            "data_past_eof",
            f"tensor data runs past the end of the file: {name!r} ends at byte {end:,}; "
            f"the file is cut short (expected at least {end:,} bytes, got {reader.size:,})",
            "download or copy the file again",
        )
    return tuple(placed)


# Keys llama.cpp refuses to load without, by `general.type` and architecture.
_SIZE_KEYS = (Keys.LLM.CONTEXT_LENGTH, Keys.LLM.EMBEDDING_LENGTH, Keys.LLM.BLOCK_COUNT)
_REQUIRED_MODEL_KEYS = (*_SIZE_KEYS, Keys.Tokenizer.MODEL)
_REQUIRED_ARCH_KEYS: Mapping[str, tuple[str, ...]] = {
    "llama": (Keys.Attention.HEAD_COUNT, Keys.Attention.LAYERNORM_RMS_EPS),
}
_REQUIRED_ADAPTER_KEYS = (Keys.Adapter.TYPE,)


def _required_string(reader: _Reader, metadata: Mapping[str, MetadataValue], key: str) -> str:
    value = metadata.get(key)
    if value is None:
        raise reader.fail("missing_key", f"required metadata key {key!r} is missing", "the file is not a usable model")
    if not isinstance(value, str) or not value:
        raise reader.fail("malformed", f"metadata key {key!r} must be a non-empty string, got {value!r}")
    return value


def _check_required_keys(reader: _Reader, metadata: Mapping[str, MetadataValue], arch: str) -> None:
    if metadata.get(Keys.General.TYPE) == "adapter":
        required: tuple[str, ...] = _REQUIRED_ADAPTER_KEYS
    elif arch == "clip":  # multimodal projectors carry their own key set
        required = ()
    else:
        required = _REQUIRED_MODEL_KEYS + _REQUIRED_ARCH_KEYS.get(arch, ())
    missing = [key.format(arch=arch) for key in required if key.format(arch=arch) not in metadata]
    if missing:
        raise reader.fail(
            "missing_key",
            f"required metadata key{'s' if len(missing) > 1 else ''} missing for architecture {arch!r}: "
            + ", ".join(missing),
            "re-convert the model with a current llama.cpp",
        )
    for key in (size_key.format(arch=arch) for size_key in _SIZE_KEYS):
        if key in metadata and not _is_count(metadata[key]):
            raise reader.fail("malformed", f"metadata key {key!r} must be a positive integer, got {metadata[key]!r}")


def _is_count(value: MetadataValue) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


# An id past the vocabulary makes llama.cpp index out of bounds.
_TOKEN_ID_KEYS = (
    Keys.Tokenizer.BOS_ID,
    Keys.Tokenizer.EOS_ID,
    Keys.Tokenizer.EOT_ID,
    Keys.Tokenizer.UNK_ID,
    Keys.Tokenizer.PAD_ID,
)


def _check_tokens(reader: _Reader, metadata: Mapping[str, MetadataValue], tokens: list[bytes]) -> None:
    first_id: dict[bytes, int] = {}
    for token_id, text in enumerate(tokens):
        previous = first_id.setdefault(text, token_id)
        if previous != token_id:
            raise reader.fail(
                "duplicate_token",
                f"duplicate token string {text.decode('utf-8', errors='replace')!r}: ids {previous} and {token_id} "
                "(llama.cpp aborts on such a vocabulary)",
                "the tokenizer was converted wrongly; re-convert the model",
            )
    for array_key in (Keys.Tokenizer.SCORES, Keys.Tokenizer.TOKEN_TYPE):
        value = metadata.get(array_key)
        length = value.length if isinstance(value, ArraySummary) else len(value) if isinstance(value, tuple) else None
        if value is not None and length != len(tokens):
            raise reader.fail(
                "malformed", f"{array_key!r} has {length} entries but the vocabulary has {len(tokens)} tokens"
            )
    for key in _TOKEN_ID_KEYS:
        special = metadata.get(key)
        if isinstance(special, int) and not isinstance(special, bool) and not 0 <= special < len(tokens):
            raise reader.fail("malformed", f"{key} is {special}, outside the vocabulary of {len(tokens)} tokens")


def _int_key(metadata: Mapping[str, MetadataValue], key: str) -> int | None:
    value = metadata.get(key)
    if isinstance(value, tuple):  # per-layer values: report the largest
        numbers = [v for v in value if isinstance(v, int) and not isinstance(v, bool)]
        return max(numbers) if numbers else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _str_key(metadata: Mapping[str, MetadataValue], key: str) -> str | None:
    value = metadata.get(key)
    return value if isinstance(value, str) else None


def _file_type_name(value: int | None) -> str | None:
    if value is None:
        return None
    try:
        name = LlamaFileType(value).name
    except ValueError:
        return f"UNKNOWN_{value}"
    return name.removeprefix("MOSTLY_").removeprefix("ALL_")


def _block_index(name: str) -> int | None:
    if not name.startswith("blk."):
        return None
    number = name[4:].split(".", 1)[0]
    return int(number) if number.isdigit() else None


def _summarise(
    reader: _Reader,
    metadata: dict[str, MetadataValue],
    arch: str,
    version: int,
    tensors: tuple[TensorInfo, ...],
    data_offset: int,
    tokens: list[bytes] | None,
) -> GGUFInfo:
    def arch_key(template: str) -> str:
        return template.format(arch=arch)

    block_count = _int_key(metadata, arch_key(Keys.LLM.BLOCK_COUNT))
    per_block: dict[int, int] = {}
    token_embd = output = other = 0
    elements_by_type: dict[str, int] = {}
    has_output = False
    for tensor in tensors:
        index = _block_index(tensor.name)
        if index is not None:
            per_block[index] = per_block.get(index, 0) + tensor.n_bytes
        elif tensor.name.startswith("token_embd."):
            token_embd += tensor.n_bytes
        elif tensor.name.startswith(("output.", "output_norm.")):
            output += tensor.n_bytes
            has_output = has_output or tensor.name.startswith("output.")
        else:
            other += tensor.n_bytes
        if len(tensor.shape) > 1:  # weights; 1-D norms and biases stay F32 in any file type
            elements_by_type[tensor.ggml_type] = elements_by_type.get(tensor.ggml_type, 0) + tensor.n_elements
    n_blocks = max(block_count or 0, max(per_block, default=-1) + 1)
    embedding_length = _int_key(metadata, arch_key(Keys.LLM.EMBEDDING_LENGTH))
    head_count = _int_key(metadata, arch_key(Keys.Attention.HEAD_COUNT))
    head_dim = embedding_length // head_count if embedding_length and head_count else None
    vocab_size = len(tokens) if tokens is not None else _int_key(metadata, arch_key(Keys.LLM.VOCAB_SIZE))
    return GGUFInfo(
        path=reader.path,
        file_size=reader.size,
        version=version,
        architecture=arch,
        name=_str_key(metadata, Keys.General.NAME),
        parameter_count=sum(tensor.n_elements for tensor in tensors),
        file_type=_file_type_name(_int_key(metadata, Keys.General.FILE_TYPE)),
        quantization=max(elements_by_type, key=elements_by_type.__getitem__) if elements_by_type else None,
        context_length=_int_key(metadata, arch_key(Keys.LLM.CONTEXT_LENGTH)),
        block_count=block_count,
        embedding_length=embedding_length,
        feed_forward_length=_int_key(metadata, arch_key(Keys.LLM.FEED_FORWARD_LENGTH)),
        head_count=head_count,
        head_count_kv=_int_key(metadata, arch_key(Keys.Attention.HEAD_COUNT_KV)) or head_count,
        key_length=_int_key(metadata, arch_key(Keys.Attention.KEY_LENGTH)) or head_dim,
        value_length=_int_key(metadata, arch_key(Keys.Attention.VALUE_LENGTH)) or head_dim,
        vocab_size=vocab_size,
        tokenizer_model=_str_key(metadata, Keys.Tokenizer.MODEL),
        bos_token_id=_int_key(metadata, Keys.Tokenizer.BOS_ID),
        eos_token_id=_int_key(metadata, Keys.Tokenizer.EOS_ID),
        chat_template=_str_key(metadata, Keys.Tokenizer.CHAT_TEMPLATE),
        layer_bytes=tuple(per_block.get(i, 0) for i in range(n_blocks)),
        token_embd_bytes=token_embd,
        output_bytes=output,
        tied_embeddings=not has_output,
        other_bytes=other,
        tensor_data_offset=data_offset,
        tensors=tensors,
        metadata=metadata,
        longest_token_bytes=max(map(len, tokens), default=0) if tokens is not None else None,
    )
