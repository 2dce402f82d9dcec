"""llama.cpp's log output, routed into Python logging, with recent problems kept for error messages.

llama.cpp (and ggml under it) has exactly one log callback per process, so
this module installs one sink per process (`llama_log()`). Two traps shape it:

* the ctypes callback object must stay referenced for as long as llama.cpp may
  log: a collected callback turns the next log line into a jump into freed
  memory (a segfault). The sink owns it and the sink lives for the process.
* llama.cpp prints one line in several calls (level CONT continues the previous
  one), so text is assembled into lines before it is judged.

Warnings and errors are also kept in a small ring so that a failed load or a
refused grammar can say *why* in its exception message instead of "returned
NULL".
"""

from __future__ import annotations

import ctypes
import functools
import logging
import threading
from collections import deque

import llama_cpp

__all__ = ["LlamaLogSink", "llama_log"]

_LOGGER = logging.getLogger("ingot.engine.llama")

# enum ggml_log_level, as in the ggml.h this llama-cpp-python bundles (its own _logger.py is stale)
_NONE, _DEBUG, _INFO, _WARN, _ERROR, _CONT = 0, 1, 2, 3, 4, 5
_PY_LEVEL = {
    _NONE: logging.INFO,
    _INFO: logging.DEBUG,  # llama.cpp's info is a firehose at load time
    _WARN: logging.WARNING,
    _ERROR: logging.ERROR,
    _DEBUG: logging.DEBUG,
}


# Warnings the engine provokes on purpose and handles itself: logged at DEBUG, never quoted.
_EXPECTED = (
    # A unified KV buffer for several slots is larger than one training window;
    # each slot is held to n_ctx by the engine, which warns itself when n_ctx is too large.
    "> n_ctx_train",
    # Embedding contexts ask for mean pooling on models that name none.
    "model default pooling_type is",
)


class LlamaLogSink:
    """Receives every llama.cpp / ggml log line; keeps the recent warnings and errors."""

    def __init__(self, capacity: int = 128) -> None:
        self._lock = threading.Lock()
        self._problems: deque[tuple[int, str]] = deque(maxlen=capacity)
        self._serial = 0
        self._line: list[str] = []
        self._line_level = _INFO
        # Kept on self: see the module docstring.
        self._callback = llama_cpp.llama_log_callback(self._on_log)
        llama_cpp.llama_log_set(self._callback, ctypes.c_void_p(0))

    def mark(self) -> int:
        """A position in the problem log; pass it to `problems_since` after a native call."""
        with self._lock:
            return self._serial

    def problems_since(self, mark: int) -> list[str]:
        """Warnings and errors logged after `mark` (oldest first), including an unfinished line."""
        with self._lock:
            found = [text for serial, text in self._problems if serial > mark]
            if self._line and self._line_level in (_WARN, _ERROR):
                found.append("".join(self._line).strip())
            return found

    def _on_log(self, level: int, text: bytes | None, _user_data: ctypes.c_void_p) -> None:
        # An exception must never unwind into C; drop the line instead.
        try:
            piece = (text or b"").decode("utf-8", errors="replace")
            with self._lock:
                if level != _CONT and self._line:
                    self._emit_locked()
                if level != _CONT:
                    self._line_level = level
                self._line.append(piece)
                if piece.endswith("\n"):
                    self._emit_locked()
        except Exception:  # noqa: BLE001 - see above
            pass

    def _emit_locked(self) -> None:
        line = "".join(self._line).rstrip()
        self._line.clear()
        if not line:
            return
        level = self._line_level
        if level == _WARN and any(marker in line for marker in _EXPECTED):
            level = _DEBUG
        if level in (_WARN, _ERROR):
            self._serial += 1
            self._problems.append((self._serial, line))
        _LOGGER.log(_PY_LEVEL.get(level, logging.DEBUG), "%s", line)


@functools.cache
def llama_log() -> LlamaLogSink:
    """The process's sink, installed on first use (llama.cpp allows only one)."""
    return LlamaLogSink()
