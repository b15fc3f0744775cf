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
    "receipt_late": {
        "en": "It came after the due date and is marked late.",
        "it": "È arrivato dopo la scadenza ed è segnato come tardivo.",
    },
    "receipt_id": {"en": "Reference", "it": "Riferimento"},
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
    "error_413_title": {"en": "Too much to send", "it": "Troppo da inviare"},
    "error_413": {
        "en": "What you sent is too large: a text may have at most 4,000 characters. Go back, "
        "shorten it and send it again.",
        "it": "Ciò che ha inviato è troppo grande: un testo può avere al massimo 4.000 "
        "caratteri. Torni indietro, lo accorci e lo invii di nuovo.",
    },
    "error_429_title": {"en": "Too many requests", "it": "Troppe richieste"},
    "error_429": {
        "en": "Too many requests came from your address in a short time. Wait {seconds} "
        "seconds, then reload the page.",
        "it": "Dal suo indirizzo sono arrivate troppe richieste in poco tempo. Attenda "
        "{seconds} secondi, poi ricarichi la pagina.",
    },
    "error_404_title": {"en": "Page not found", "it": "Pagina non trovata"},
    "error_404": {
        "en": "There is no page at this address. Check it, or open the link from your e-mail "
        "again.",
        "it": "A questo indirizzo non c'è alcuna pagina. Lo verifichi, oppure apra di nuovo il "
        "link della sua e-mail.",
    },
    "error_422_title": {"en": "This address is not valid", "it": "Questo indirizzo non è valido"},
    "error_422": {
        "en": "Part of this address or form is not what it should be. Open the link from your "
        "e-mail again.",
        "it": "Una parte di questo indirizzo o modulo non è come dovrebbe. Apra di nuovo il "
        "link della sua e-mail.",
    },
    "error_401_title": {"en": "Not signed in", "it": "Accesso non effettuato"},
    "error_401": {
        "en": "This page needs a valid link or sign-in.",
        "it": "Questa pagina richiede un link valido o l'accesso.",
    },
    "error_403_title": {"en": "Not allowed", "it": "Non consentito"},
    "error_403": {
        "en": "This link or key does not allow this.",
        "it": "Questo link o questa chiave non lo consente.",
    },
    "error_503_title": {"en": "Not available right now", "it": "Non disponibile in questo momento"},
    "error_503": {
        "en": "The service cannot reach its records right now. Wait a moment, then reload the "
        "page; nothing you sent is lost.",
        "it": "Il servizio non raggiunge i suoi dati in questo momento. Attenda un attimo, poi "
        "ricarichi la pagina; nulla di ciò che ha inviato va perso.",
    },
    "error_other_title": {"en": "Something went wrong", "it": "Qualcosa non ha funzionato"},
    "error_other": {
        "en": "The request could not be answered.",
        "it": "Non è stato possibile rispondere alla richiesta.",
    },
    "error_code": {"en": "HTTP status", "it": "Stato HTTP"},
    "mode_on-site": {"en": "on site", "it": "in presenza"},
    "mode_remote": {"en": "remote", "it": "a distanza"},
    "mode_hybrid": {"en": "hybrid", "it": "ibrida"},
    "yes": {"en": "yes", "it": "sì"},
    "no": {"en": "no", "it": "no"},
    "comment": {"en": "Comment", "it": "Commento"},
    "ratings": {"en": "Ratings", "it": "Giudizi"},
    "achieved": {"en": "achieved", "it": "raggiunto"},
    "reference": {"en": "reference", "it": "riferimento"},
    "received_on": {"en": "Received", "it": "Ricevuto il"},
    "was_late": {"en": "late", "it": "in ritardo"},
    "superseded": {"en": "replaced by a later one", "it": "sostituito da uno successivo"},
    "you_sent": {"en": "What you sent", "it": "Che cosa ha inviato"},
    "you_sent_latest": {
        "en": "What you sent last (this is the one that counts)",
        "it": "Il suo ultimo invio (è quello che conta)",
    },
    "earlier_versions": {"en": "Earlier versions, kept", "it": "Versioni precedenti, conservate"},
    "earlier_sent": {"en": "Sent earlier", "it": "Inviati in precedenza"},
    "sent_approval": {"en": "You approved", "it": "Ha approvato"},
    "sent_change_request": {"en": "You asked for changes", "it": "Ha chiesto modifiche"},
    "sent_already_title": {"en": "You have already sent this", "it": "Lo ha già inviato"},
    "correct_intro": {
        "en": "Something to change? The form below starts from what you sent last: correct it "
        "and send it again. The correction replaces it; both stay in the internship's record.",
        "it": "Qualcosa da cambiare? Il modulo qui sotto parte dal suo ultimo invio: lo "
        "corregga e lo invii di nuovo. La correzione lo sostituisce; entrambi restano nel "
        "registro del tirocinio.",
    },
    "send_correction": {"en": "Send the correction", "it": "Invia la correzione"},
    "step_closed_title": {"en": "This step is closed", "it": "Questo passaggio è chiuso"},
    "closed_approve": {
        "en": "The learning agreement is no longer open for approval.",
        "it": "Il learning agreement non è più aperto all'approvazione.",
    },
    "closed_report": {
        "en": "Reports can no longer be sent for this internship.",
        "it": "Per questo tirocinio non si possono più inviare relazioni.",
    },
    "closed_feedback": {
        "en": "Feedback can no longer be sent for this internship.",
        "it": "Per questo tirocinio non si possono più inviare valutazioni dell'azienda.",
    },
    "closed_assess": {
        "en": "The final assessment is closed.",
        "it": "La valutazione finale è chiusa.",
    },
    "closed_validate": {
        "en": "The validation is closed.",
        "it": "La convalida è chiusa.",
    },
    "closed_sent_below": {
        "en": "What you sent is below.",
        "it": "Quello che ha inviato è qui sotto.",
    },
    "phase_now": {"en": "The internship is now", "it": "Il tirocinio ora è"},
    "phase_planning": {"en": "being planned", "it": "in pianificazione"},
    "phase_awaiting_start": {
        "en": "approved, waiting for its start",
        "it": "approvato, in attesa dell'inizio",
    },
    "phase_in_progress": {"en": "in progress", "it": "in corso"},
    "phase_paused": {"en": "paused", "it": "sospeso"},
    "phase_evaluation": {"en": "in its final evaluation", "it": "in valutazione finale"},
    "phase_certification": {"en": "being certified", "it": "in certificazione"},
    "phase_completed": {"en": "completed", "it": "concluso"},
    "phase_not_certified": {
        "en": "ended without a badge",
        "it": "concluso senza badge",
    },
    "phase_cancelled": {"en": "cancelled", "it": "annullato"},
    "phase_withdrawn": {"en": "withdrawn", "it": "ritirato"},
    "step_not_yet_title": {"en": "Not open yet", "it": "Non ancora aperto"},
    "not_yet_report": {
        "en": "Reports open when the internship starts",
        "it": "Le relazioni si aprono all'inizio del tirocinio",
    },
    "not_yet_feedback": {
        "en": "Feedback opens once every party has approved the learning agreement",
        "it": "La valutazione si apre quando tutte le parti hanno approvato il learning agreement",
    },
    "not_yet_assess": {
        "en": "The final assessment opens when the internship ends",
        "it": "La valutazione finale si apre alla fine del tirocinio",
    },
    "not_yet_validate": {
        "en": "Validation opens once the internship has ended and both final assessments are in",
        "it": "La convalida si apre a tirocinio concluso, quando entrambe le valutazioni finali "
        "sono arrivate",
    },
    "not_yet_approve": {
        "en": "Approval is not open yet",
        "it": "L'approvazione non è ancora aperta",
    },
    "come_back": {
        "en": "Open this link again then; you will also get an e-mail.",
        "it": "Apra di nuovo questo link allora; riceverà anche una e-mail.",
    },
    "step_paused_title": {"en": "The internship is paused", "it": "Il tirocinio è sospeso"},
    "paused_text": {
        "en": "Nothing can be sent while it is paused; its deadlines move by the time paused. "
        "Open this link again once it resumes.",
        "it": "Mentre è sospeso non si può inviare nulla; le scadenze si spostano del tempo di "
        "sospensione. Apra di nuovo questo link quando riprende.",
    },
    "step_waiting_title": {
        "en": "Waiting for the assessments",
        "it": "In attesa delle valutazioni",
    },
    "waiting_text": {
        "en": "Validation opens once both final assessments are in. Still missing:",
        "it": "La convalida si apre quando entrambe le valutazioni finali sono arrivate. "
        "Manca ancora:",
    },
    "done_approve_title": {"en": "You have approved", "it": "Ha approvato"},
    "done_approve": {
        "en": "Your approval of this version of the learning agreement is in: nothing more is "
        "asked of you unless the plan changes (you would get a new e-mail).",
        "it": "La sua approvazione di questa versione del learning agreement è registrata: non "
        "le viene chiesto altro, a meno che il piano cambi (riceverebbe una nuova e-mail).",
    },
    "done_assess_title": {"en": "Your assessment is in", "it": "La sua valutazione è registrata"},
    "done_assess": {
        "en": "An assessment can no longer be changed once sent. It is shown below.",
        "it": "Una valutazione inviata non può più essere modificata. È riportata qui sotto.",
    },
    "done_validate_title": {"en": "The result is validated", "it": "Il risultato è convalidato"},
    "done_validate": {
        "en": "The validation can no longer be changed. It is shown below.",
        "it": "La convalida non può più essere modificata. È riportata qui sotto.",
    },
    "changes_after_approval": {
        "en": "You have approved, and can still ask the institution for changes.",
        "it": "Ha approvato, e può ancora chiedere modifiche all'istituto.",
    },
    "late_note": {
        "en": "The due date has passed: what you send now is still accepted and marked late.",
        "it": "La scadenza è passata: quello che invia ora è comunque accettato e segnato come "
        "tardivo.",
    },
    "missed_note": {
        "en": "This milestone is marked missed, but what you send now is still accepted and "
        "marked late.",
        "it": "Questa tappa risulta mancata, ma quello che invia ora è comunque accettato e "
        "segnato come tardivo.",
    },
    "share_label": {
        "en": "Show this report in my badge",
        "it": "Mostra questa relazione nel mio badge",
    },
    "share_kept": {
        "en": "You shared a report for this milestone before: it stays in your badge unless a "
        "correction you share replaces it; to withdraw it, ask your tutor.",
        "it": "Ha già condiviso una relazione per questa tappa: resta nel suo badge, a meno che "
        "una correzione condivisa la sostituisca; per ritirarla, si rivolga al suo tutor.",
    },
    "shared_in_badge": {"en": "Shown in the badge", "it": "Mostrata nel badge"},
    "share_help": {
        "en": "If ticked, the text of this report becomes part of your Open Badge as evidence: "
        "whoever you show the badge to can read it. Nothing else you write is shown.",
        "it": "Se selezionato, il testo di questa relazione diventa parte del suo Open Badge "
        "come prova: chi vede il badge può leggerlo. Nient'altro di ciò che scrive viene "
        "mostrato.",
    },
    "assess_final": {
        "en": "Once sent, an assessment cannot be changed.",
        "it": "Una volta inviata, la valutazione non può essere modificata.",
    },
    "validate_final": {
        "en": "Once sent, the validation cannot be changed: pass issues the badge, fail ends the "
        "internship without one.",
        "it": 'Una volta inviata, la convalida non può essere modificata: "superato" rilascia '
        'il badge, "non superato" conclude il tirocinio senza.',
    },
    "assessments_title": {"en": "The assessments", "it": "Le valutazioni"},
    "rule_text": {
        "en": "An outcome's achieved level is the lower of the company mentor's and the "
        "institution tutor's levels. Pass is possible only when every outcome reaches its "
        "required level.",
        "it": "Il livello raggiunto di un risultato è il più basso tra quelli del tutor "
        'aziendale e del tutor dell\'istituto. "Superato" è possibile solo se ogni risultato '
        "raggiunge il livello richiesto.",
    },
    "reaches": {"en": "reaches it", "it": "lo raggiunge"},
    "falls_short": {"en": "falls short", "it": "non lo raggiunge"},
    "comment_of": {"en": "Comment of the", "it": "Commento del"},
    "pass_possible": {
        "en": "Every outcome reaches its required level: you may validate as pass.",
        "it": "Ogni risultato raggiunge il livello richiesto: può convalidare come superato.",
    },
    "pass_impossible": {
        "en": "Pass is not possible under the plan's rule; these outcomes fall short:",
        "it": '"Superato" non è possibile secondo la regola del piano; questi risultati non '
        "raggiungono il livello richiesto:",
    },
    "pass_disabled": {
        "en": "Pass is not possible: see the assessments above.",
        "it": '"Superato" non è possibile: veda le valutazioni qui sopra.',
    },
    "receipt_on": {"en": "on", "it": "il"},
    "receipt_for": {"en": "for", "it": "per"},
    "receipt_what": {"en": "What we received", "it": "Che cosa abbiamo ricevuto"},
    "receipt_approval": {
        "en": "We received your approval of the learning agreement",
        "it": "Abbiamo ricevuto la sua approvazione del learning agreement",
    },
    "receipt_change_request": {
        "en": "We received your request for changes to the learning agreement",
        "it": "Abbiamo ricevuto la sua richiesta di modifiche al learning agreement",
    },
    "receipt_milestone_report": {
        "en": "We received your report",
        "it": "Abbiamo ricevuto la sua relazione",
    },
    "receipt_company_feedback": {
        "en": "We received the company's feedback",
        "it": "Abbiamo ricevuto la valutazione dell'azienda",
    },
    "receipt_assessment": {
        "en": "We received your final assessment",
        "it": "Abbiamo ricevuto la sua valutazione finale",
    },
    "receipt_validation": {
        "en": "We received your validation of the result",
        "it": "Abbiamo ricevuto la sua convalida del risultato",
    },
    "receipt_correct": {
        "en": "Something to change? Open the same link again: the form starts from what you "
        "sent, and a correction replaces it (both are kept).",
        "it": "Qualcosa da cambiare? Apra di nuovo lo stesso link: il modulo parte da ciò che "
        "ha inviato, e una correzione lo sostituisce (entrambi vengono conservati).",
    },
    "receipt_correct_link": {"en": "Correct it", "it": "Correggi"},
    "receipt_final": {
        "en": "It can no longer be changed.",
        "it": "Non può più essere modificato.",
    },
    "receipt_approval_next": {
        "en": "Nothing more is asked of you unless the plan changes.",
        "it": "Non le viene chiesto altro, a meno che il piano cambi.",
    },
    "receipt_changes_next": {
        "en": "The institution reads it and amends the plan; you will be asked to approve the "
        "new version.",
        "it": "L'istituto la legge e modifica il piano; le verrà chiesto di approvare la nuova "
        "versione.",
    },
}


def translator(language: Language) -> dict[str, str]:
    return {key: texts[language] for key, texts in TEXTS.items()}
