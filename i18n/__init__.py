"""The words of e-mails and pages in the reader's language: gettext catalogues, one file per
language (`i18n/locale/<language>/LC_MESSAGES/messages.po`), compiled in memory when first used.
English is the source text (the msgids), so English needs no catalogue.

Dates, times and numbers are worded by Babel for the language, and always in the internship's
time zone, which they name (`2 dic 2026, 17:00 CET`)."""

from __future__ import annotations

import gettext as _gettext
import io
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_date, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent

from models.plan import Language

__all__ = [
    "LANGUAGES",
    "LOCALE_DIR",
    "day",
    "gettext",
    "moment",
    "ngettext",
    "number",
    "percent",
    "period",
    "translations",
]

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGES: tuple[Language, ...] = get_args(Language)
DayStyle = Literal["short", "medium", "long", "full"]


def catalogue_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"


@cache
def translations(language: str) -> _gettext.NullTranslations:
    """The language's messages: its .po file compiled in memory (fuzzy entries are left out, so
    they read in English); English, and a language without a catalogue, read the source."""
    path = catalogue_path(language)
    if language == "en" or not path.is_file():
        return _gettext.NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return _gettext.GNUTranslations(compiled)


def gettext(language: str, message: str, **values: object) -> str:
    """The message in the language, its `%(name)s` placeholders filled with `values`."""
    text = translations(language).gettext(message)
    return text % values if values else text


def ngettext(language: str, singular: str, plural: str, n: int, /, **values: object) -> str:
    """The message for the count `n` in the language (its plural rule picks the form: "1
    second", "2 seconds"), its `%(name)s` placeholders filled with `values`."""
    text = translations(language).ngettext(singular, plural, n)
    return text % values if values else text


def _local(moment: datetime, time_zone: str) -> datetime:
    """The moment in the time zone (UTC when the zone is unknown to this machine)."""
    try:
        return moment.astimezone(ZoneInfo(time_zone))
    except (ZoneInfoNotFoundError, ValueError):
        return moment.astimezone(ZoneInfo("UTC"))


def zone_name(at: datetime, language: str) -> str:
    """The zone's short name as the language writes it (`CET`, `MEZ`), else its abbreviation
    (`CEST`, `JST` is `+0900` in CLDR), else its offset from UTC."""
    localized = format_time(at, "z", locale=language)
    if localized.isalpha():
        return localized
    abbreviation = at.tzname() or ""
    return abbreviation if abbreviation.isalpha() else localized


def day(when: datetime, time_zone: str, language: str, style: DayStyle = "medium") -> str:
    """The date in the time zone: `2 dic 2026` (medium), `mercoledì 2 dicembre 2026` (full)."""
    return format_date(_local(when, time_zone), style, locale=language)


def moment(when: datetime, time_zone: str, language: str, style: DayStyle = "medium") -> str:
    """The date and time in the time zone, naming the zone: `2 dic 2026, 17:00 CET`,
    `Dec 2, 2026, 5:00 PM CET`, `02.12.2026, 17:00 MEZ`."""
    at = _local(when, time_zone)
    pattern = Locale.parse(language).datetime_formats["medium"]
    # CLDR puts a narrow no-break space before AM/PM: a plain one reads (and wraps) alike.
    time = format_time(at, "short", locale=language).replace("\u202f", " ")
    clock = f"{time} {zone_name(at, language)}"
    return str(pattern).format(clock, format_date(at, style, locale=language))


def period(start: datetime, end: datetime, time_zone: str, language: str) -> str:
    """The first and the last day, as the language writes them: `1 mar 2027 - 28 mag 2027`
    (with an en dash)."""
    return f"{day(start, time_zone, language)} \N{EN DASH} {day(end, time_zone, language)}"


def number(value: float, language: str) -> str:
    """`12.5` as `12,5` in Italian, `1,234.5` as `1.234,5` in German."""
    return format_decimal(value, locale=language)


def percent(rate: float, language: str) -> str:
    """`0.85` as `85%` in English, `85 %` in German and French."""
    return format_percent(rate, locale=language)
