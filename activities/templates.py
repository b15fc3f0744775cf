"""E-mail texts per notification kind and language (English and Italian)."""

from __future__ import annotations

from models.activities import NotificationKind
from models.plan import Language

# (subject, body) per kind and language; placeholders come from Notification.values plus `name`.
TEMPLATES: dict[NotificationKind, dict[Language, tuple[str, str]]] = {
    "approval_request": {
        "en": (
            "Please approve the learning agreement for {internship}",
            "Dear {name},\n\nthe learning agreement for internship {internship} is ready. "
            "Please review and approve it before its deadline.",
        ),
        "it": (
            "Approvazione del learning agreement per {internship}",
            "Gentile {name},\n\nil learning agreement del tirocinio {internship} è pronto. "
            "La preghiamo di esaminarlo e approvarlo entro la scadenza.",
        ),
    },
    "agreement_reminder": {
        "en": (
            "Reminder: the learning agreement for {internship} awaits your approval",
            "Dear {name},\n\nthe learning agreement for internship {internship} (version "
            "{version}) still needs your approval. Without it by {deadline}, the internship is "
            "cancelled.",
        ),
        "it": (
            "Promemoria: il learning agreement per {internship} attende la sua approvazione",
            "Gentile {name},\n\nil learning agreement del tirocinio {internship} (versione "
            "{version}) attende ancora la sua approvazione. Senza di essa entro il {deadline}, il "
            "tirocinio viene annullato.",
        ),
    },
    "change_request": {
        "en": (
            "Change requested on the learning agreement for {internship}",
            "Dear {name},\n\nthe {party} asks for changes to version {version} of the learning "
            "agreement for internship {internship}. Please review the comment and amend the plan.",
        ),
        "it": (
            "Richiesta di modifica del learning agreement per {internship}",
            "Gentile {name},\n\nla parte {party} chiede modifiche alla versione {version} del "
            "learning agreement del tirocinio {internship}. La preghiamo di leggere il commento e "
            "di modificare il piano.",
        ),
    },
    "milestone_request": {
        "en": (
            "{milestone}: your submission for {internship}",
            'Dear {name},\n\nthe milestone "{milestone}" of internship {internship} is coming '
            "up. Please send your submission by its due date.",
        ),
        "it": (
            "{milestone}: il suo contributo per {internship}",
            'Gentile {name},\n\nla tappa "{milestone}" del tirocinio {internship} è vicina. '
            "La preghiamo di inviare il suo contributo entro la scadenza.",
        ),
    },
    "reminder": {
        "en": (
            "Reminder: {milestone} for {internship} is due",
            'Dear {name},\n\nwe have not yet received your submission for "{milestone}" '
            "of internship {internship}. Please send it as soon as possible.",
        ),
        "it": (
            "Promemoria: {milestone} per {internship} è in scadenza",
            "Gentile {name},\n\nnon abbiamo ancora ricevuto il suo contributo per "
            '"{milestone}" del tirocinio {internship}. La preghiamo di inviarlo al più presto.',
        ),
    },
    "escalation": {
        "en": (
            "Overdue: {milestone} for {internship}",
            'Dear {name},\n\nthe milestone "{milestone}" of internship {internship} is '
            "overdue despite reminders. Please follow up with the parties.",
        ),
        "it": (
            "In ritardo: {milestone} per {internship}",
            'Gentile {name},\n\nla tappa "{milestone}" del tirocinio {internship} è in '
            "ritardo nonostante i promemoria. La preghiamo di contattare le parti.",
        ),
    },
    "missed": {
        "en": (
            "Missed: {milestone} for {internship}",
            'Dear {name},\n\nthe milestone "{milestone}" of internship {internship} is marked '
            "missed: it was not submitted despite reminders and an escalation to the tutor.",
        ),
        "it": (
            "Mancata: {milestone} per {internship}",
            'Gentile {name},\n\nla tappa "{milestone}" del tirocinio {internship} risulta '
            "mancata: non è stata inviata nonostante i promemoria e la segnalazione al tutor.",
        ),
    },
    "assessment_request": {
        "en": (
            "Please assess internship {internship}",
            "Dear {name},\n\ninternship {internship} has ended. Please assess each learning "
            "outcome on the rubric within the assessment window.",
        ),
        "it": (
            "Valutazione del tirocinio {internship}",
            "Gentile {name},\n\nil tirocinio {internship} è terminato. La preghiamo di valutare "
            "ogni risultato di apprendimento secondo la rubrica entro il termine previsto.",
        ),
    },
    "assessment_reminder": {
        "en": (
            "Reminder: please assess internship {internship}",
            "Dear {name},\n\nyour assessment of internship {internship} is still missing. The "
            "assessment window closes on {deadline}.",
        ),
        "it": (
            "Promemoria: valutazione del tirocinio {internship}",
            "Gentile {name},\n\nmanca ancora la sua valutazione del tirocinio {internship}. Il "
            "termine per la valutazione scade il {deadline}.",
        ),
    },
    "validation_request": {
        "en": (
            "Please validate the result of internship {internship}",
            "Dear {name},\n\nboth assessments of internship {internship} are in. Please "
            "validate the result for the institution.",
        ),
        "it": (
            "Convalida del risultato del tirocinio {internship}",
            "Gentile {name},\n\nentrambe le valutazioni del tirocinio {internship} sono "
            "arrivate. La preghiamo di convalidare il risultato per l'istituto.",
        ),
    },
    "outcome": {
        "en": (
            "Internship {internship}: not certified",
            "Dear {name},\n\ninternship {internship} ends without a badge: {reason}.",
        ),
        "it": (
            "Tirocinio {internship}: non certificato",
            "Gentile {name},\n\nil tirocinio {internship} si conclude senza badge: {reason}.",
        ),
    },
    "withdrawal": {
        "en": (
            "Internship {internship} has been withdrawn",
            "Dear {name},\n\ninternship {internship} has been withdrawn: {reason}.",
        ),
        "it": (
            "Il tirocinio {internship} è stato ritirato",
            "Gentile {name},\n\nil tirocinio {internship} è stato ritirato: {reason}.",
        ),
    },
    "cancellation": {
        "en": (
            "Internship {internship} has been cancelled",
            "Dear {name},\n\ninternship {internship} has been cancelled: {reason}.",
        ),
        "it": (
            "Il tirocinio {internship} è stato annullato",
            "Gentile {name},\n\nil tirocinio {internship} è stato annullato: {reason}.",
        ),
    },
    "badge": {
        "en": (
            "Your Open Badge: {badge}",
            "Dear {name},\n\ncongratulations! Your internship {internship} is certified. "
            "Your Open Badge is attached: the image carries the signed credential, and the JSON "
            "file is the same credential for wallets. Verify it at {verify_url}",
        ),
        "it": (
            "Il suo Open Badge: {badge}",
            "Gentile {name},\n\ncongratulazioni! Il suo tirocinio {internship} è certificato. "
            "In allegato trova il suo Open Badge: l'immagine contiene la credenziale firmata e "
            "il file JSON è la stessa credenziale per i wallet. Può verificarlo su {verify_url}",
        ),
    },
}

SIGNATURE = {"en": "\n\n-- \ninternflow\n", "it": "\n\n-- \ninternflow\n"}


def render(kind: NotificationKind, language: Language, values: dict[str, str]) -> tuple[str, str]:
    subject, body = TEMPLATES[kind][language]
    return subject.format(**values), body.format(**values) + SIGNATURE[language]
