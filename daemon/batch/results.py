"""Result files that survive a SIGKILL at any moment: append one line, fsync, repeat.

`ResultFile.open(path)` reads what an earlier run wrote. A last line without
its newline (or one that does not parse) is the write a kill interrupted: it
is cut off, and its request runs again. A bad line anywhere else is not
something a kill does, so it is an error rather than data quietly dropped.
Each `append` is one `write` of the whole line on an O_APPEND descriptor,
then `fsync`: a line is either entirely there or not at all.

`rewrite(records)` replaces the file atomically (temporary file, fsync,
rename, fsync of the folder): for sorting into input order at the end, and
for dropping records a rerun redoes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import ResultFileError

__all__ = ["ResultFile", "encode_record"]


def encode_record(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


class ResultFile:
    """One JSONL results file, open for appending."""

    def __init__(self, path: Path, records: list[dict[str, Any]], repaired: bool) -> None:
        self.path = path
        self.records = records  # what was there when opened, plus what was appended since
        self.repaired = repaired  # a torn last line was cut off
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    @classmethod
    def open(cls, path: Path) -> ResultFile:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = b""
        records: list[dict[str, Any]] = []
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline; else a torn write
        repaired = bool(tail)
        good_end = len(data) - len(tail)
        for index, line in enumerate(lines):
            record = _parse(line)
            if record is None:
                if index == len(lines) - 1 and not tail:
                    repaired = True  # a whole last line that is garbage: a write lost with the machine
                    good_end -= len(line) + 1
                    break
                raise ResultFileError(
                    f"{path}:{index + 1}: not a result record",
                    hint="a torn write only ever hits the last line: fix or remove this one, or move the file away",
                )
            records.append(record)
        if repaired:
            with open(path, "r+b") as handle:
                handle.truncate(good_end)
                os.fsync(handle.fileno())
        return cls(path, records, repaired)

    @property
    def custom_ids(self) -> set[str]:
        return {r["custom_id"] for r in self.records if isinstance(r.get("custom_id"), str)}

    def append(self, record: dict[str, Any]) -> None:
        data = encode_record(record)
        written = os.write(self._fd, data)
        if written != len(data):  # a full disk: leave no half line behind for this run to build on
            raise OSError(f"short write to {self.path} ({written} of {len(data)} bytes)")
        os.fsync(self._fd)
        self.records.append(record)

    def rewrite(self, records: Iterable[dict[str, Any]]) -> None:
        records = list(records)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(temporary, "wb") as handle:
            for record in records:
                handle.write(encode_record(record))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
        _fsync_folder(self.path.parent)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self.records = records

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ResultFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or "custom_id" not in record:
        return None
    return record


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
