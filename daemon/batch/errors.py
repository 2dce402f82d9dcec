"""Errors of batch runs; each is one line for a user (IngotError).

    BatchError
    ├── DuplicateCustomIdError   two input lines share a custom_id (found before anything runs)
    ├── ResultFileError          an output or errors file holds a line that is not a result record
    └── DaemonGoneError          the daemon stopped answering mid-run (rerun to resume)
"""

from __future__ import annotations

from ingot.registry.errors import IngotError

__all__ = ["BatchError", "DaemonGoneError", "DuplicateCustomIdError", "ResultFileError"]


class BatchError(IngotError):
    """Base of the batch errors."""


class DuplicateCustomIdError(BatchError, ValueError):
    """custom_ids must be unique: results are matched to requests (and resumed) by them."""


class ResultFileError(BatchError):
    """A results file that cannot be resumed from as it is."""


class DaemonGoneError(BatchError):
    """Every further request would fail the same way: stop, and let a rerun resume."""
