"""The words of the HTML pages that are data (a party, a mode, a phase, a step's state, an error):
their English text, marked for the catalogues, translated where a page shows them. Everything
else a page says is in its template, in `_()`."""

from __future__ import annotations

from typing import Final


def N_(message: str) -> str:
    """Marks a message for the catalogues; it is translated where it is shown."""
    return message


Plural = tuple[str, str]
"""A message with a count: its singular and plural English forms (`i18n.ngettext` picks the
language's form for the count)."""


def Np_(singular: str, plural: str) -> Plural:
    """Marks a message with a count for the catalogues (singular and plural)."""
    return singular, plural


PARTY: Final = {
    "intern": N_("Intern"),
    "tutor": N_("Institution tutor"),
    "mentor": N_("Company mentor"),
    "guardian": N_("Guardian of the intern"),
    "company_representative": N_("Company representative"),
    "sending_coordinator": N_("Sending institution coordinator"),
    "receiving_coordinator": N_("Receiving institution coordinator"),
}
MODE: Final = {"on-site": N_("on site"), "remote": N_("remote"), "hybrid": N_("hybrid")}
#: A phase, after "The internship is now".
PHASE: Final = {
    "planning": N_("being planned"),
    "awaiting_start": N_("approved, waiting for its start"),
    "in_progress": N_("in progress"),
    "paused": N_("paused"),
    "evaluation": N_("in its final evaluation"),
    "certification": N_("being certified"),
    "completed": N_("completed"),
    "not_certified": N_("ended without a badge"),
    "cancelled": N_("cancelled"),
    "withdrawn": N_("withdrawn"),
}
CLOSED: Final = {
    "approve": N_("The learning agreement is no longer open for approval."),
    "report": N_("Reports can no longer be sent for this internship."),
    "feedback": N_("Feedback can no longer be sent for this internship."),
    "assess": N_("The final assessment is closed."),
    "validate": N_("The validation is closed."),
    "self_assess": N_("The self-assessment is closed."),
    "evaluate_placement": N_("The evaluation of the placement is closed."),
}
NOT_YET: Final = {
    "approve": N_("Approval is not open yet"),
    "report": N_("Reports open when the internship starts"),
    "feedback": N_("Feedback opens once every party has approved the learning agreement"),
    "assess": N_("The final assessment opens when the internship ends"),
    "validate": N_(
        "Validation opens once the internship has ended and both final assessments are in"
    ),
    "self_assess": N_("The self-assessment opens with its milestone, or when the internship ends"),
    "evaluate_placement": N_("The evaluation of the placement opens when the internship ends"),
}
DONE_TITLE: Final = {
    "approve": N_("You have approved"),
    "assess": N_("Your assessment is in"),
    "validate": N_("The result is validated"),
    "self_assess": N_("Your self-assessment is in"),
    "evaluate_placement": N_("Your evaluation of the placement is in"),
}
DONE: Final = {
    "approve": N_(
        "Your approval of this version of the learning agreement is in: nothing more is asked "
        "of you unless the plan changes (you would get a new e-mail)."
    ),
    "assess": N_("An assessment can no longer be changed once sent. It is shown below."),
    "validate": N_("The validation can no longer be changed. It is shown below."),
    "self_assess": N_("A self-assessment can no longer be changed once sent. It is shown below."),
    "evaluate_placement": N_(
        "Your evaluation can no longer be changed once sent. It is shown below; the company "
        "never sees it."
    ),
}
#: What a receipt says was received, by the submission's kind.
RECEIPT: Final = {
    "approval": N_("We received your approval of the learning agreement"),
    "change_request": N_("We received your request for changes to the learning agreement"),
    "milestone_report": N_("We received your report"),
    "company_feedback": N_("We received the company's feedback"),
    "assessment": N_("We received your final assessment"),
    "validation": N_("We received your validation of the result"),
    "self_assessment": N_("We received your self-assessment"),
    "placement_evaluation": N_("We received your evaluation of the placement"),
}
COMMENT_OF: Final = {
    "tutor": N_("Comment of the institution tutor:"),
    "mentor": N_("Comment of the company mentor:"),
}
CREDENTIAL_STATUS: Final = {
    "active": N_("active"),
    "revoked": N_("revoked"),
    "suspended": N_("suspended"),
}
#: A form's number field holds something else; `field` is the field's name.
ENTER_A_NUMBER: Final = N_("%(field)s: enter a number")
NOT_AN_ADMIN_KEY: Final = N_("That is not an active admin key.")
LINK_INVALID: Final = N_("This link is not valid. Open the latest link from your e-mail.")
LINK_EXPIRED: Final = N_(
    "This link has expired. Use the link in a more recent e-mail, or ask the institution for a "
    "new one."
)
NOT_FOUND: Final = N_("This internship is not known (yet).")
#: A form sent while Temporal is down: refused (503), with the answers kept in the form.
NOT_RECORDED_NOW: Final = N_(
    "We could not record this now: the system that runs the internships is not reachable. Your "
    "answers are still here; send them again in a minute."
)
#: Above a party's page while Temporal is down.
OUTAGE_BANNER: Final = N_(
    "The system that runs the internships is not reachable right now: you can read this page, "
    "but what you send can only be recorded once it is back, usually within a minute."
)
#: Above an admin page while Temporal is down; `%(as_of)s` is when the latest step was recorded.
ADMIN_OUTAGE_BANNER: Final = N_(
    "Temporal is unreachable, so no internship moves until it is back and changes are refused: "
    "what you see is as of %(as_of)s (the latest step recorded)."
)
#: How far a pause moved an internship's dates (the dashboard): in days, or in hours or minutes
#: for a shorter pause; a pause of less than a minute says nothing.
PAUSED_DAYS: Final = Np_("(moved by %(count)s day paused)", "(moved by %(count)s days paused)")
PAUSED_HOURS: Final = Np_("(moved by %(count)s hour paused)", "(moved by %(count)s hours paused)")
PAUSED_MINUTES: Final = Np_(
    "(moved by %(count)s minute paused)", "(moved by %(count)s minutes paused)"
)

#: An error page's title and text by HTTP status; `%(seconds)s` is the time to wait.
ERRORS: Final[dict[int | None, tuple[str, str | Plural]]] = {
    413: (
        N_("Too much to send"),
        N_(
            "What you sent is too large: a text may have at most 4,000 characters. Go back, "
            "shorten it and send it again."
        ),
    ),
    429: (
        N_("Too many requests"),
        Np_(
            "Too many requests came from your address in a short time. Wait %(seconds)s "
            "second, then reload the page.",
            "Too many requests came from your address in a short time. Wait %(seconds)s "
            "seconds, then reload the page.",
        ),
    ),
    404: (
        N_("Page not found"),
        N_("There is no page at this address. Check it, or open the link from your e-mail again."),
    ),
    422: (
        N_("This address is not valid"),
        N_(
            "Part of this address or form is not what it should be. Open the link from your "
            "e-mail again."
        ),
    ),
    401: (N_("Not signed in"), N_("This page needs a valid link or sign-in.")),
    403: (N_("Not allowed"), N_("This link or key does not allow this.")),
    503: (
        N_("Not available right now"),
        N_(
            "The service cannot reach its records right now. Wait a moment, then reload the "
            "page; nothing you sent is lost."
        ),
    ),
    None: (N_("Something went wrong"), N_("The request could not be answered.")),
}

#: What the templates read as `words`.
WORDS: Final = {
    "party": PARTY,
    "mode": MODE,
    "phase": PHASE,
    "closed": CLOSED,
    "not_yet": NOT_YET,
    "done_title": DONE_TITLE,
    "done": DONE,
    "receipt": RECEIPT,
    "comment_of": COMMENT_OF,
    "credential_status": CREDENTIAL_STATUS,
}

#: The intern's European Digital Credential, when it cannot be made yet (its institution has no
#: legal identifier recorded, or a seal that is not its own): theirs to ask the school about.
EUROPASS_TITLE: Final = N_("European Digital Credential (Europass)")
EUROPASS_NOT_YET: Final = N_(
    "Your European Digital Credential cannot be made yet: your school has still to complete its "
    "part. Please ask your school."
)
