"""Korea time, in one place: Payletter's clock, the days operators filter by, and their range.

Payletter's zone-less times, "D+180", "결제 당일" and every date the API and the CLI take
are Korea dates (UTC+9, no daylight saving time). Times are stored in UTC.

The dates anyone may filter by: Korea dates from 2000-01-01 to 2099-12-31, one range for
every entry point (GET /orders and its CSV, the ops page, /reconciliations, the CLI).
Outside it a date is bad input: 9999-12-31 has no next day to end a range on, 0001-01-01
in Korea time is before year 1 in UTC and can't be bound to a query, and no payment of
ours lies out there anyway.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

KST = timezone(timedelta(hours=9))  # Korea has no daylight saving time

FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)


def check_day(day: date) -> date:
    """`day` if it lies in the range; ValueError saying so otherwise."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"'{day.isoformat()}' is not between {FIRST_DAY} and {LAST_DAY}")
    return day


def parse_day(text: str) -> date:
    """A date written YYYY-MM-DD, in the range; ValueError saying what is wrong."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date as YYYY-MM-DD") from None
    return check_day(day)


def check_instant(moment: datetime) -> datetime:
    """`moment` if it is timezone-aware and on a day of the range; ValueError otherwise."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone")
    check_day(moment.date())
    return moment


def korea_date(value: date) -> date:
    """The Korea calendar day of a date, or of an aware datetime (naive ones are refused)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("a datetime must be timezone-aware to pick a Korea date")
        return value.astimezone(KST).date()
    return value


def korea_day_start(day: date) -> datetime:
    """The instant a Korea calendar day begins."""
    return datetime.combine(day, time(0), tzinfo=KST)
