"""``CUDA_VISIBLE_DEVICES`` / ``HIP_VISIBLE_DEVICES`` / ``ROCR_VISIBLE_DEVICES`` semantics.

The runtimes read these lists left to right: each entry is an index into the
devices seen so far or a UUID (or a unique prefix of one). The first entry that
is invalid (``-1``, an index out of range, an unknown or ambiguous UUID, a
repeat) ends the list, so ``0,2,-1,1`` makes devices 0 and 2 visible, in that
order, and ``-1`` or an empty value hides them all. An unset variable leaves
every device visible in its natural order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Selection:
    """Which positions of the input list survive, and what (if anything) stopped the parse."""

    positions: tuple[int, ...]
    stopped_at: str | None = None


def select_visible(
    devices: Sequence[T],
    spec: str | None,
    uuid_of: Callable[[T], str | None],
) -> Selection:
    """Apply one visible-devices list (``spec``; None = unset) to ``devices``."""
    if spec is None:
        return Selection(tuple(range(len(devices))))
    chosen: list[int] = []
    for raw in spec.split(","):
        entry = raw.strip()
        position = _resolve(entry, devices, uuid_of)
        if position is None or position in chosen:
            # An empty value is how users say "none": not worth reporting as a stop.
            return Selection(tuple(chosen), None if entry == "" and not chosen else entry)
        chosen.append(position)
    return Selection(tuple(chosen))


def _resolve(entry: str, devices: Sequence[T], uuid_of: Callable[[T], str | None]) -> int | None:
    if entry == "":
        return None
    if entry.lstrip("-").isdigit():
        index = int(entry)
        return index if 0 <= index < len(devices) else None
    wanted = entry.lower()
    if not wanted.startswith(("gpu-", "mig-")):
        wanted = "gpu-" + wanted
    if wanted.startswith("mig-"):
        return None  # MIG slices are not whole devices; the planner cannot use them as such.
    matches = [
        i for i, device in enumerate(devices) if (uuid := uuid_of(device)) and uuid.lower().startswith(wanted)
    ]
    return matches[0] if len(matches) == 1 else None
