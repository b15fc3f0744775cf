"""Dates and times as people read them, in English and Italian: the one wording of e-mails and
pages ("12 March 2027, 17:00 CET", "12 marzo 2027, ore 17:00 CET"), in the internship's time
zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from models.plan import Language

_MONTHS: dict[Language, tuple[str, ...]] = {
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    "it": (
        "gennaio",
        "febbraio",
        "marzo",
        "aprile",
        "maggio",
        "giugno",
        "luglio",
        "agosto",
        "settembre",
        "ottobre",
        "novembre",
        "dicembre",
    ),
}


def local(moment: datetime, time_zone: str) -> datetime:
    """The moment in the time zone (UTC when the zone is unknown to this machine)."""
    try:
        return moment.astimezone(ZoneInfo(time_zone))
    except (ZoneInfoNotFoundError, ValueError):
        return moment.astimezone(ZoneInfo("UTC"))


def day(moment: datetime, time_zone: str, language: Language) -> str:
    """`12 March 2027` / `12 marzo 2027`: the date in the time zone."""
    at = local(moment, time_zone)
    return f"{at.day} {_MONTHS[language][at.month - 1]} {at.year}"


def moment_text(moment: datetime, time_zone: str, language: Language) -> str:
    """`12 March 2027, 17:00 CET` / `12 marzo 2027, ore 17:00 CET`."""
    at = local(moment, time_zone)
    zone = at.tzname() or time_zone
    clock = f"{at:%H:%M} {zone}"
    return f"{day(at, time_zone, language)}, {'ore ' if language == 'it' else ''}{clock}"


def period_text(start: datetime, end: datetime, time_zone: str, language: Language) -> str:
    """`1 March 2027 to 28 May 2027` / `dal 1 marzo 2027 al 28 maggio 2027`."""
    first, last = day(start, time_zone, language), day(end, time_zone, language)
    if language == "it":
        return f"{_it_from(first)} {_it_to(last)}"
    return f"{first} to {last}"


def _it_from(text: str) -> str:
    """`dal 1 marzo 2027`, `dall'8 marzo 2027` (an elided article before 8 and 11)."""
    return f"dall'{text}" if text.split()[0] in ("8", "11") else f"dal {text}"


def _it_to(text: str) -> str:
    return f"all'{text}" if text.split()[0] in ("8", "11") else f"al {text}"
