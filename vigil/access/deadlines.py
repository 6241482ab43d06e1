"""Legal deadlines of a parent's request: reply within N working days, access within M
days (Decree 356/2025/NĐ-CP Art. 5). Working days skip Saturdays, Sundays and the public
holidays in ``[access] holidays``; days are counted in the school's time zone from the
day after the request was received, and a deadline ends at the end of its last day."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def _end_of(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(23, 59, 59, 999999), tzinfo=tz)


def is_working_day(day: date, holidays: Collection[date]) -> bool:
    return day.weekday() < 5 and day not in holidays


def working_days_after(
    received: datetime, n: int, holidays: Collection[date], tz: ZoneInfo
) -> datetime:
    """End of the n-th working day after the day ``received`` falls on (local time)."""
    day = received.astimezone(tz).date()
    counted = 0
    while counted < n:
        day += timedelta(days=1)
        if is_working_day(day, holidays):
            counted += 1
    return _end_of(day, tz)


def days_after(received: datetime, n: int, tz: ZoneInfo) -> datetime:
    """End of the n-th calendar day after the day ``received`` falls on (local time)."""
    return _end_of(received.astimezone(tz).date() + timedelta(days=n), tz)


@dataclass(frozen=True)
class DeadlineState:
    due: datetime
    done_at: datetime | None
    state: str  # "met", "late", "pending", "overdue", "void"

    @property
    def open(self) -> bool:
        return self.state in ("pending", "overdue")


def state_of(due: datetime, done_at: datetime | None, now: datetime, void: bool) -> DeadlineState:
    """Where a deadline stands: met/late once done, else pending/overdue; ``void`` when
    it no longer applies (a refused or withdrawn request needs no access)."""
    if done_at is not None:
        return DeadlineState(due, done_at, "met" if done_at <= due else "late")
    if void:
        return DeadlineState(due, None, "void")
    return DeadlineState(due, None, "pending" if now <= due else "overdue")
