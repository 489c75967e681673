"""Priority: an integer, higher runs first. Named levels of seed 1 (tiers) and seed 5 (urgency).

Free of Django: config/settings.py builds django-rq's RQ_QUEUES from `carrier_names`.
"""
from __future__ import annotations

import bisect

FREE, PRO, PAYG = 1, 5, 10
LOW, NORMAL, HIGH, CRITICAL = 1, 5, 10, 20

NAMED: dict[str, int] = {
    "FREE": FREE,
    "PRO": PRO,
    "PAYG": PAYG,
    "LOW": LOW,
    "NORMAL": NORMAL,
    "HIGH": HIGH,
    "CRITICAL": CRITICAL,
}
DEFAULT = NORMAL
#: Seed 5's urgency levels by value, for showing a queue's declared priority (seed 1's tiers share the values).
URGENCY: dict[int, str] = {LOW: "LOW", NORMAL: "NORMAL", HIGH: "HIGH", CRITICAL: "CRITICAL"}
MIN, MAX = 0, 100

#: Each level is one RQ list per queue; a job waits in the list of the highest level <= its priority.
LEVELS: tuple[int, ...] = tuple(sorted({MIN, *NAMED.values()}))


def parse(value: int | str | None) -> int:
    """An integer priority from an int, a digit string or a level name; ValueError otherwise."""
    if value is None or value == "":
        return DEFAULT
    if isinstance(value, bool):
        raise ValueError("priority must be an integer or a level name")
    if isinstance(value, str):
        upper = value.strip().upper()
        if upper in NAMED:
            return NAMED[upper]
        try:
            value = int(upper)
        except ValueError:
            raise ValueError(f"unknown priority {value!r}; use an integer {MIN}-{MAX} or one of {sorted(NAMED)}") from None
    if not isinstance(value, int) or not MIN <= value <= MAX:
        raise ValueError(f"priority must be an integer from {MIN} to {MAX}")
    return value


def level(priority: int) -> int:
    """The level (RQ list) a priority waits in: the highest level not above it."""
    return LEVELS[max(bisect.bisect_right(LEVELS, priority) - 1, 0)]


def carrier_name(queue: str, level: int) -> str:
    """The RQ queue that carries `queue`'s jobs of one level (e.g. `default.p005`)."""
    return f"{queue}.p{level:03d}"


def carrier_names(queue: str) -> list[str]:
    """Every RQ queue that carries `queue`'s jobs, highest level first (django-rq's RQ_QUEUES are built from these)."""
    return [carrier_name(queue, lv) for lv in reversed(LEVELS)]
