"""The gRPC servicers of the ingot.v1 services; thin: they translate, the scheduler decides."""

from __future__ import annotations

from .inference import InferenceServicer
from .models import ModelsServicer
from .runtime import RuntimeServicer

__all__ = ["InferenceServicer", "ModelsServicer", "RuntimeServicer"]
