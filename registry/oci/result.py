"""What a push or pull did, as a value the CLI prints and tests assert on."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TransferResult"]


@dataclass(frozen=True)
class TransferResult:
    """Counts of one push or pull.

    `bytes_transferred` counts blob bytes that crossed the network (a resent
    chunk counts twice); `bytes_skipped` counts blob bytes that did not need
    to (already there, mounted, or resumed from an earlier run's partial file,
    of which `bytes_resumed` is the last kind). Manifest bytes are counted
    apart in `manifest_bytes`.
    """

    reference: str
    digest: str
    format: str
    blobs_total: int
    blobs_transferred: int
    blobs_skipped: int
    blobs_mounted: int
    bytes_total: int
    bytes_transferred: int
    bytes_skipped: int
    bytes_resumed: int
    manifest_bytes: int
    seconds: float
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "reference": self.reference,
            "digest": self.digest,
            "format": self.format,
            "blobs_total": self.blobs_total,
            "blobs_transferred": self.blobs_transferred,
            "blobs_skipped": self.blobs_skipped,
            "blobs_mounted": self.blobs_mounted,
            "bytes_total": self.bytes_total,
            "bytes_transferred": self.bytes_transferred,
            "bytes_skipped": self.bytes_skipped,
            "bytes_resumed": self.bytes_resumed,
            "manifest_bytes": self.manifest_bytes,
            "seconds": round(self.seconds, 3),
            "notes": list(self.notes),
        }
