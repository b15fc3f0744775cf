"""The words of the HTML pages in English and Italian (the recipient's language from the plan)."""

from __future__ import annotations

from typing import Final

from models.plan import Language

TEXTS: Final[dict[str, dict[Language, str]]] = {
    "internship": {"en": "Internship", "it": "Tirocinio"},
    "intern": {"en": "Intern", "it": "Tirocinante"},
    "tutor": {"en": "Institution tutor", "it": "Tutor dell'istituto"},
    "mentor": {"en": "Company mentor", "it": "Tutor aziendale"},
    "institution": {"en": "Institution", "it": "Istituto"},
    "company": {"en": "Host company", "it": "Azienda ospitante"},
    "period": {"en": "Period", "it": "Periodo"},
    "mode": {"en": "Mode", "it": "Modalità"},
    "weekly_hours": {"en": "Hours per week", "it": "Ore settimanali"},
    "agreement_deadline": {"en": "Approve by", "it": "Approvare entro il"},
    "learning_outcomes": {"en": "Learning outcomes", "it": "Risultati di apprendimento"},
    "milestones": {"en": "Milestones", "it": "Tappe"},
    "due": {"en": "due", "it": "scadenza"},
    "plan_version": {"en": "Plan version", "it": "Versione del piano"},
    "approve_title": {
        "en": "Learning agreement: your approval",
        "it": "Learning agreement: la sua approvazione",
    },
    "approve_intro": {
        "en": "Please read the essentials of the plan below. Approve it, or ask the institution "
        "for changes with a comment.",
        "it": "Legga gli elementi essenziali del piano qui sotto. Lo approvi, oppure chieda "
        "modifiche all'istituto con un commento.",
    },
    "approve_button": {
        "en": "Approve the learning agreement",
        "it": "Approva il learning agreement",
    },
    "comment_optional": {"en": "Comment (optional)", "it": "Commento (facoltativo)"},
    "changes_title": {"en": "Ask for changes", "it": "Chiedi modifiche"},
    "changes_comment": {"en": "What should change?", "it": "Che cosa va modificato?"},
    "changes_button": {
        "en": "Send the request for changes",
        "it": "Invia la richiesta di modifiche",
    },
    "report_title": {"en": "Milestone report", "it": "Relazione di tappa"},
    "report_intro": {
        "en": "Tell your tutor what you did and learned up to this milestone.",
        "it": "Racconti al suo tutor che cosa ha fatto e imparato fino a questa tappa.",
    },
    "summary": {"en": "Your report", "it": "La sua relazione"},
    "submit": {"en": "Send", "it": "Invia"},
    "feedback_title": {"en": "Company feedback", "it": "Valutazione dell'azienda"},
    "feedback_intro": {
        "en": "Rate the intern on each learning outcome on the plan's scale, and record the "
        "hours attended.",
        "it": "Valuti il tirocinante su ogni risultato di apprendimento secondo la scala del "
        "piano e indichi le ore di presenza.",
    },
    "not_rated": {"en": "— not rated —", "it": "— non valutato —"},
    "attendance_hours": {"en": "Hours attended", "it": "Ore di presenza"},
    "comments": {"en": "Comments", "it": "Commenti"},
    "general_feedback": {"en": "Feedback at any time", "it": "Valutazione in qualsiasi momento"},
    "assess_title": {"en": "Final assessment", "it": "Valutazione finale"},
    "assess_intro": {
        "en": "Assess every learning outcome on the plan's rubric.",
        "it": "Valuti ogni risultato di apprendimento secondo la rubrica del piano.",
    },
    "required_level": {"en": "required", "it": "richiesto"},
    "validate_title": {"en": "Validate the result", "it": "Convalida del risultato"},
    "validate_intro": {
        "en": "Both assessments are in. Validate the result for the institution.",
        "it": "Entrambe le valutazioni sono arrivate. Convalidi il risultato per l'istituto.",
    },
    "decision": {"en": "Decision", "it": "Decisione"},
    "pass": {"en": "Pass: award the badge", "it": "Superato: rilascia il badge"},
    "fail": {"en": "Fail: no badge", "it": "Non superato: nessun badge"},
    "reason": {"en": "Reason", "it": "Motivazione"},
    "receipt_title": {"en": "Thank you: received", "it": "Grazie: ricevuto"},
    "receipt_text": {
        "en": "Your submission was accepted on",
        "it": "Il suo invio è stato accettato il",
    },
    "receipt_late": {"en": "It was late.", "it": "È arrivato in ritardo."},
    "receipt_id": {"en": "Receipt", "it": "Ricevuta"},
    "refused_title": {"en": "Not accepted", "it": "Non accettato"},
    "fix_and_retry": {
        "en": "Please correct the form and send it again.",
        "it": "Corregga il modulo e lo invii di nuovo.",
    },
    "link_title": {"en": "This link cannot be used", "it": "Questo link non è utilizzabile"},
    "link_invalid": {
        "en": "This link is not valid. Open the latest link from your e-mail.",
        "it": "Questo link non è valido. Apra il link dell'e-mail più recente.",
    },
    "link_expired": {
        "en": "This link has expired. Use the link in a more recent e-mail, or ask the "
        "institution for a new one.",
        "it": "Questo link è scaduto. Usi il link di un'e-mail più recente, oppure ne chieda "
        "uno nuovo all'istituto.",
    },
    "not_found": {
        "en": "This internship is not known (yet).",
        "it": "Questo tirocinio non è (ancora) registrato.",
    },
    "on_behalf": {"en": "You are", "it": "Lei è"},
}


def translator(language: Language) -> dict[str, str]:
    return {key: texts[language] for key, texts in TEXTS.items()}
