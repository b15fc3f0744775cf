"""Languages: every message of the e-mails and pages translated in every catalogue (with the same
placeholders); dates and numbers worded by Babel for the language, in the internship's time zone,
naming it; and, through the API and the mail sink, an internship's e-mail and pages in each
language its parties read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from babel.messages.pofile import read_po
from markupsafe import escape
from starlette.requests import Request

from api.pages import error_page, paused_shift
from i18n import LANGUAGES, catalogue_path, day, moment, number
from i18n.extract import template
from models.plan import InternshipPlan, Language
from runtime.links import party_link
from tests.helpers import eventually, load_outbox
from tests.test_api_harness import Api, api, in_language, planned

__all__ = ["api"]

PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def test_the_messages_are_found_in_the_templates_and_the_code() -> None:
    found = {message.id for message in template() if message.id}
    # One from an e-mail template, one from a page template, one from the page words in Python.
    assert "Dear %(name)s," in found
    assert "Approve the learning agreement" in found
    assert "in its final evaluation" in found
    assert len(found) > 250


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "en"])
def test_every_catalogue_translates_every_message(language: str) -> None:
    """A language is complete: each message the code and templates use has a translation (not
    fuzzy, not empty) with the same placeholders; and it keeps no message nobody uses."""
    path = catalogue_path(language)
    assert path.is_file(), f"no catalogue for {language}: {path}"
    with path.open("rb") as source:
        catalogue = read_po(source, locale=language)
    needed = {message.id for message in template() if message.id}
    problems: list[str] = []
    for msgid in sorted(needed, key=str):
        entry = catalogue.get(msgid)
        # A message with a count has its singular and plural, and a form for each of the
        # language's plural categories (Italian, French and Spanish have three).
        forms = list(entry.string) if entry is not None and isinstance(entry.string, tuple) else []
        if entry is None or not entry.string or (forms and not all(forms)):
            problems.append(f"untranslated: {msgid!r}")
        elif entry.fuzzy:
            problems.append(f"fuzzy: {msgid!r}")
        elif isinstance(msgid, tuple) != bool(forms):
            problems.append(f"plural forms differ: {msgid!r} -> {entry.string!r}")
        elif forms and len(forms) != catalogue.num_plurals:
            problems.append(f"{len(forms)} forms, not {catalogue.num_plurals}: {msgid!r}")
        elif any(
            sorted(PLACEHOLDER.findall(form)) != sorted(PLACEHOLDER.findall(msgid[-1]))
            for form in forms
        ) or (
            not forms
            and sorted(PLACEHOLDER.findall(str(entry.string))) != sorted(PLACEHOLDER.findall(msgid))
        ):
            problems.append(f"placeholders differ: {msgid!r} -> {entry.string!r}")
    unused = sorted(str(m.id) for m in catalogue if m.id and m.id not in needed)
    problems += [f"not used: {msgid!r}" for msgid in unused]
    assert not problems, "\n".join(problems)


#: 2 December 2026, 16:00 UTC: 17:00 in Rome, 11:00 in New York, the 3rd in Tokyo at 01:00.
AT = datetime(2026, 12, 2, 16, tzinfo=UTC)


@pytest.mark.parametrize(
    ("language", "zone", "expected_day", "expected_moment"),
    [
        ("it", "Europe/Rome", "2 dic 2026", "2 dic 2026, 17:00 CET"),
        ("de", "Europe/Berlin", "02.12.2026", "02.12.2026, 17:00 MEZ"),
        ("fr", "Europe/Paris", "2 déc. 2026", "2 déc. 2026, 17:00 CET"),
        ("es", "Europe/Madrid", "2 dic 2026", "2 dic 2026, 17:00 CET"),
        ("en", "America/New_York", "Dec 2, 2026", "Dec 2, 2026, 11:00 AM EST"),
        ("it", "Asia/Tokyo", "3 dic 2026", "3 dic 2026, 01:00 JST"),
    ],
)
def test_dates_are_worded_per_language_in_the_time_zone(
    language: str, zone: str, expected_day: str, expected_moment: str
) -> None:
    assert day(AT, zone, language) == expected_day
    assert moment(AT, zone, language) == expected_moment


def test_e_mail_dates_say_the_weekday_and_numbers_the_locale_s_separators() -> None:
    assert moment(AT, "Europe/Rome", "it", "full") == "mercoledì 2 dicembre 2026, 17:00 CET"
    assert moment(AT, "Europe/Berlin", "de", "full") == "Mittwoch, 2. Dezember 2026, 17:00 MEZ"
    assert number(1234.5, "de") == "1.234,5" and number(1234.5, "en") == "1,234.5"
    assert number(36, "it") == "36" and number(7.5, "fr") == "7,5"


@dataclass(frozen=True)
class Words:
    """What a reader of the language sees, written out here (not read from the catalogues)."""

    zone: str
    greeting: str
    subject: str
    button: str
    mode: str
    received: str
    invalid_link: str
    unknown_badge: str
    sign_in: str
    not_a_number: str


WORDS: dict[Language, Words] = {
    "en": Words(
        "America/New_York",
        "Dear",
        "Learning agreement to approve:",
        "Approve the learning agreement",
        "hybrid",
        "Thank you: received",
        "This link is not valid.",
        "Unknown badge",
        "Sign in",
        "enter a number",
    ),
    "it": Words(
        "Europe/Rome",
        "Gentile",
        "Learning agreement da approvare:",
        "Approva il learning agreement",
        "ibrida",
        "Grazie: ricevuto",
        "Questo link non è valido.",
        "Badge sconosciuto",
        "Accedi",
        "inserisca un numero",
    ),
    "de": Words(
        "Europe/Berlin",
        "Guten Tag",
        "Lernvereinbarung zur Genehmigung:",
        "Lernvereinbarung genehmigen",
        "hybrid",
        "Danke: eingegangen",
        "Dieser Link ist nicht gültig.",
        "Unbekanntes Badge",
        "Anmelden",
        "Bitte eine Zahl eingeben",
    ),
    "fr": Words(
        "Europe/Paris",
        "Bonjour",
        "Contrat pédagogique à approuver\u00a0:",
        "Approuver le contrat pédagogique",
        "hybride",
        "Merci\u00a0: bien reçu",
        "Ce lien n'est pas valide.",
        "Badge inconnu",
        "Se connecter",
        "saisissez un nombre",
    ),
    "es": Words(
        "Atlantic/Canary",
        "Estimado/a",
        "Acuerdo de aprendizaje por aprobar:",
        "Aprobar el acuerdo de aprendizaje",
        "híbrida",
        "Gracias: recibido",
        "Este enlace no es válido.",
        "Insignia desconocida",
        "Iniciar sesión",
        "introduzca un número",
    ),
}


def _plan(language: Language) -> InternshipPlan:
    data = in_language(planned(), language).model_dump(mode="json")
    data["period"]["time_zone"] = WORDS[language].zone
    return InternshipPlan.model_validate(data)


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("language", LANGUAGES)
async def test_an_internship_in_each_language_by_e_mail_and_on_its_pages(
    api: Api, language: Language
) -> None:
    """The parties read `language`: the approval e-mail in the outbox and the approval page,
    its receipt, and the pages met without a link (a refused link, an unknown badge, the admin
    sign-in: the browser's language) say it in that language, with the plan's dates worded by
    Babel in the plan's time zone."""
    words = WORDS[language]
    plan = _plan(language)
    iid, zone = plan.internship_id, plan.period.time_zone
    assert (await api.start(plan)).status_code == 201

    async def arrived() -> bool:
        return any(
            m["X-Internflow-Internship"] == iid
            and m["X-Internflow-Kind"] == "approval_request"
            and m["To"].addresses[0].addr_spec == plan.intern.email
            for m in load_outbox(api.settings)
        )

    await eventually(arrived, f"the intern's approval request in {language}")
    mail = next(
        m
        for m in load_outbox(api.settings)
        if m["X-Internflow-Internship"] == iid
        and m["X-Internflow-Kind"] == "approval_request"
        and m["To"].addresses[0].addr_spec == plan.intern.email
    )
    assert mail["Content-Language"] == language
    assert _flat(str(mail["Subject"])).startswith(_flat(words.subject)), mail["Subject"]
    body = mail.get_body(("plain",))
    assert body is not None
    text = _flat(str(body.get_content()))
    assert text.startswith(f"{words.greeting} {plan.intern.name}")
    deadline = moment(plan.agreement_deadline, zone, language, "full")
    assert deadline in text, (deadline, text)
    assert deadline.split(", ")[-1].split()[-1] in {
        "EST",
        "EDT",
        "CET",
        "CEST",
        "MEZ",
        "MESZ",
        "WET",
        "WEST",
    }

    path = party_link(api.settings, iid, "intern", "approve").removeprefix(
        api.settings.public_base_url
    )
    page = await api.http.get(path)
    assert page.status_code == 200
    html = _flat(page.text)
    assert f'<html lang="{language}">' in page.text
    assert escape(words.button) in html and f"<dd>{escape(words.mode)}</dd>" in html
    assert f"<dd>{moment(plan.agreement_deadline, zone, language)}</dd>" in html
    start, end = day(plan.period.start, zone, language), day(plan.period.end, zone, language)
    period = f"{start} \N{EN DASH} {end}"
    assert period in html, period
    assert f"<dd>{number(plan.weekly_hours, language)}</dd>" in html

    form = re.search(r'name="submission_id" value="(web-approval[^"]+)"', page.text)
    assert form is not None
    receipt = await api.http.post(
        path, data={"action": "approve", "submission_id": form[1], "plan_version": "1"}
    )
    assert receipt.status_code == 200 and escape(words.received) in receipt.text
    await api.settle(iid)  # the receipt comes before the submission's row
    accepted = await api.pool.fetchval(
        "SELECT accepted_at FROM submissions WHERE internship_id = $1 AND kind = 'approval'", iid
    )
    assert moment(accepted, zone, language) in _flat(receipt.text)

    refused = await api.http.get(
        "/p/not-a-token",
        headers={"Accept": "text/html", "Accept-Language": f"{language}-XX, en;q=0.5"},
    )
    assert refused.status_code == 401 and escape(words.invalid_link) in refused.text
    assert f'<html lang="{language}">' in refused.text
    feedback = party_link(api.settings, iid, "mentor", "feedback").removeprefix(
        api.settings.public_base_url
    )
    refused_form = await api.http.post(
        feedback, data={"submission_id": "web-feedback-x", "attendance_hours": "many"}
    )
    assert refused_form.status_code == 422
    assert str(escape(words.not_a_number)) in _flat(refused_form.text)
    browser = {"Accept": "text/html", "Accept-Language": f"{language};q=0.9, en;q=0.5"}
    unknown = await api.http.get("/verify/00000000-0000-4000-8000-000000000000", headers=browser)
    assert unknown.status_code == 404 and escape(words.unknown_badge) in unknown.text
    sign_in = await api.http.get("/admin/login", headers=browser)
    assert sign_in.status_code == 200 and f">{escape(words.sign_in)}</button>" in sign_in.text
    await api.settle(iid)


#: Informal address ("tu", "du") in each language: the e-mails and pages address their reader
#: formally ("lei", "Sie", "vous", "usted"), the badge's as every other.
INFORMAL = {
    "it": r"\b(tuo|tua|tuoi|tue|ti|te|hai|puoi|sei)\b",
    "de": r"\b([Dd]ein\w*|[Dd]u|dir|dich)\b",
    "fr": r"\b(ton|ta|tes|toi|[Tt]u)\b",
    "es": r"\b([Tt]us?|te|tuya|tuyo)\b",
}
#: What the earner posts to their own contacts (mail/badge.py's share text) speaks to them.
SAID_TO_FRIENDS = {"I earned the Open Badge “%(badge)s” from %(issuer)s. See it and check it here:"}


@pytest.mark.parametrize("language", sorted(INFORMAL))
def test_every_catalogue_addresses_its_reader_formally(language: str) -> None:
    with catalogue_path(language).open("rb") as source:
        catalogue = read_po(source, locale=language)
    informal = [
        f"{message.id!r} -> {form!r}"
        for message in catalogue
        if message.id and message.id not in SAID_TO_FRIENDS
        for form in (message.string if isinstance(message.string, tuple) else (message.string,))
        if re.search(INFORMAL[language], form)
    ]
    assert not informal, "\n".join(informal)


#: "Wait 1 second": each language's form for the count, never "1 Sekunden".
WAIT = {
    "en": ("Wait 1 second,", "Wait 5 seconds,"),
    "it": ("Attenda 1 secondo,", "Attenda 5 secondi,"),
    "de": ("Warten Sie 1 Sekunde ", "Warten Sie 5 Sekunden "),
    "fr": ("Attendez 1 seconde,", "Attendez 5 secondes,"),
    "es": ("Espere 1 segundo ", "Espere 5 segundos "),
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_counts_take_the_language_s_plural_form(language: Language) -> None:
    one, five = WAIT[language]
    for seconds, said in (("1", one), ("5", five)):
        request = Request(
            {
                "type": "http",
                "method": "GET",
                "path": "/p/x",
                "headers": [(b"accept-language", language.encode())],
                "query_string": b"",
            }
        )
        page = error_page(request, 429, "", headers={"Retry-After": seconds})
        text = " ".join(bytes(page.body).decode().split())
        assert said in text, text
        assert f'<html lang="{language}">' in text
    # How far a pause moved the dates (the dashboard): a unit that fits, nothing for seconds.
    assert paused_shift(20, language) == ""
    assert paused_shift(0, language) == ""
    english = {
        60: "(moved by 1 minute paused)",
        20 * 60: "(moved by 20 minutes paused)",
        3600: "(moved by 1 hour paused)",
        5 * 3600 + 59: "(moved by 5 hours paused)",
        86400: "(moved by 1 day paused)",
        3 * 86400: "(moved by 3 days paused)",
        1.5 * 86400: "(moved by 1.5 days paused)",
    }
    for seconds, said in english.items():
        shift = paused_shift(seconds, language)
        assert shift and not re.search(r"(?<![\d.,])0 ", shift), shift
        if language == "en":
            assert shift == said
    if language == "de":
        assert paused_shift(86400, "de") == "(um 1 Tag Pause verschoben)"
        assert paused_shift(3 * 86400, "de") == "(um 3 Tage Pause verschoben)"
        assert paused_shift(1.5 * 86400, "de") == "(um 1,5 Tage Pause verschoben)"
