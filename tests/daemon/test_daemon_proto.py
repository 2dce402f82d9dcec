"""The committed stubs match the .proto sources, and resolve inside the ingot.proto package."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "proto" / "ingot" / "v1"
# Version stamps protoc and the gRPC plugin write into the stubs; a newer
# grpcio-tools changes only these, not the contract.
_STAMPS = (
    re.compile(r"^# Protobuf Python Version: .*$", re.MULTILINE),
    re.compile(r"_runtime_version\.ValidateProtobufRuntimeVersion\([^)]*\)", re.DOTALL),
    re.compile(r"^GRPC_GENERATED_VERSION = .*$", re.MULTILINE),
)
MODULES = ("common_pb2", "inference_pb2", "models_pb2", "runtime_pb2", "inference_pb2_grpc", "models_pb2_grpc",
           "runtime_pb2_grpc")


def _normalized(text: str) -> str:
    for stamp in _STAMPS:
        text = stamp.sub("<version>", text)
    return text


def _stub_files(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.glob("*_pb2*.py*"))}


def test_committed_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen-proto"), "--out", str(tmp_path)], check=True,
                   capture_output=True)
    fresh = _stub_files(tmp_path / "ingot" / "v1")
    committed = _stub_files(GENERATED)
    assert sorted(fresh) == sorted(committed), "stub files differ: run scripts/gen-proto"
    stale = [name for name in fresh if _normalized(fresh[name]) != _normalized(committed[name])]
    assert not stale, f"{', '.join(stale)} drifted from the .proto files: run scripts/gen-proto"


def test_generated_descriptors_equal_the_proto_sources(tmp_path: Path) -> None:
    from google.protobuf import descriptor_pb2
    from grpc_tools import protoc

    out = tmp_path / "set.pb"
    include = Path(protoc.__file__).resolve().parent / "_proto"
    sources = sorted(str(p.relative_to(ROOT / "proto")) for p in GENERATED.glob("*.proto"))
    assert protoc.main(["protoc", f"-I{ROOT / 'proto'}", f"-I{include}", f"--descriptor_set_out={out}", *sources]) == 0
    expected = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    for proto in expected.file:
        _drop_json_names(proto)
        module = importlib.import_module(f"ingot.proto.ingot.v1.{Path(proto.name).stem}_pb2")
        actual = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(actual)
        assert actual == proto, f"{proto.name}: the committed stub describes another contract"


def _drop_json_names(proto: object) -> None:
    # protoc fills json_name in descriptor sets; CopyToProto leaves it out.
    for message in proto.message_type:  # type: ignore[attr-defined]
        _drop_message_json_names(message)


def _drop_message_json_names(message: object) -> None:
    for field in message.field:  # type: ignore[attr-defined]
        field.ClearField("json_name")
    for nested in message.nested_type:  # type: ignore[attr-defined]
        _drop_message_json_names(nested)


@pytest.mark.parametrize("name", MODULES)
def test_stubs_import_inside_the_ingot_proto_package(name: str) -> None:
    # A fresh interpreter: no top-level `ingot.v1` may be needed for the imports to resolve.
    code = f"import ingot.proto.ingot.v1.{name} as m; import sys; assert 'ingot.v1' not in sys.modules; print(m.__name__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"ingot.proto.ingot.v1.{name}"
