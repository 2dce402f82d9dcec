"""Model names as metrics, `ingot ps` and every reply show them: `llama3`, not `registry.ollama.ai/library/llama3:latest`."""

from __future__ import annotations

from ingot.registry.errors import ReferenceError as InvalidReferenceError
from ingot.registry.reference import Reference

__all__ = ["short_name"]


def short_name(name: str) -> str:
    try:
        return Reference.parse(name).short
    except InvalidReferenceError:
        return name
