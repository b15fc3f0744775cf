"""What an e-mail says about its internship beyond what the workflow passes: who (intern,
company, the people still owing), the milestone and its due date in force, what is asked and by
when; read from the records the workflow wrote before it asked for the e-mail (the plan version,
the read model's status) and worded in the reader's language and the internship's time zone.
Nothing here waits for a record: what an e-mail needs that is written beside it (a change
request's comment) travels in the workflow's values."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import structlog
from pydantic import ValidationError

from i18n import day as _day
from i18n import moment as _moment
from i18n import period as period_text
from models.activities import Notification
from models.ids import notification_key
from models.plan import InternshipPlan, Language
from models.status import InternshipStatus

log = structlog.get_logger(__name__)


def day(when: datetime, time_zone: str, language: Language) -> str:
    """An e-mail's date with its weekday, as the language writes it (`lunedì 8 marzo 2027`)."""
    return _day(when, time_zone, language, "full")


def moment_text(when: datetime, time_zone: str, language: Language) -> str:
    """An e-mail's date and time in the time zone, naming it (`lunedì 8 marzo 2027, 17:00
    CET`)."""
    return _moment(when, time_zone, language, "full")


#: Kinds whose key (`<workflow id>/<kind>/<key>/<role>`) is a milestone id.
MILESTONE_KINDS = frozenset({"milestone_request", "reminder", "escalation", "missed"})


def about(
    plan: InternshipPlan,
    notification: Notification,
    status: InternshipStatus | None = None,
) -> dict[str, Any]:
    """The values every template may use (see `mail.templates.CONTEXT`), from the plan
    and the status the workflow last recorded: names, the period and deadlines in force."""
    zone, language = plan.period.time_zone, notification.language
    start = status.start if status is not None else plan.period.start
    end = status.end if status is not None else plan.period.end
    values: dict[str, Any] = {
        "intern": plan.intern.name,
        "company": plan.company.name,
        "institution": plan.institution.name,
        "institution_email": plan.institution.email,
        "tutor": plan.tutor.name,
        "tutor_email": plan.tutor.email,
        "mentor": plan.mentor.name,
        "period": period_text(start, end, zone, language),
        "end": day(end, zone, language),
        "role": notification.recipient_role,
    }
    kind = notification.kind
    deadline: datetime | None = None
    if kind in ("approval_request", "agreement_reminder"):
        deadline = plan.agreement_deadline
    elif kind in ("assessment_request", "assessment_reminder"):
        deadline = _deadline(status, "assessment") or end + plan.assessment_window
    elif kind == "validation_request":
        deadline = _deadline(status, "validation")
    if deadline is not None:
        values["deadline"] = moment_text(deadline, zone, language)
        values["deadline_day"] = day(deadline, zone, language)
    if kind in MILESTONE_KINDS:
        values.update(_milestone(plan, notification, status, language))
    party = notification.values.get("party") or notification.values.get("failed_role")
    if party in plan.signatories():
        values["party_name"] = plan.person(party).name
    return values


def _deadline(status: InternshipStatus | None, what: str) -> datetime | None:
    if status is None:
        return None
    return next((d.at for d in status.deadlines if d.what == what), None)


def _milestone(
    plan: InternshipPlan,
    notification: Notification,
    status: InternshipStatus | None,
    language: Language,
) -> dict[str, Any]:
    milestone_id = notification_key(notification.notification_id)
    milestone = plan.milestone(milestone_id)
    if milestone is None:
        return {}
    zone = plan.period.time_zone
    state = None
    if status is not None:
        state = next((m for m in status.milestones if m.milestone_id == milestone_id), None)
    due = state.due if state is not None else milestone.due
    owing = state.outstanding if state is not None else milestone.submitted_by
    policy = plan.reminder_policy
    return {
        "due": moment_text(due, zone, language),
        "due_day": day(due, zone, language),
        "missed_on": moment_text(due + policy.missed_after, zone, language),
        "outstanding": [
            {"role": role, "name": person.name, "email": person.email}
            for role in owing
            if role in ("intern", "mentor")
            for person in (plan.person(role),)  # type: ignore[arg-type]
        ],
    }


async def load_context(
    conn: asyncpg.Connection, notification: Notification, bound: Any
) -> dict[str, Any]:
    """`mail_values`, for sending: PostgreSQL being away is retried like the rest of the
    delivery; anything else (records that cannot be read as the model expects) sends the e-mail
    naming the internship by its id alone, and is logged on `bound` (the delivery's logger)."""
    try:
        return await mail_values(conn, notification)
    except (
        OSError,
        asyncpg.PostgresConnectionError,
        asyncpg.CannotConnectNowError,
        asyncpg.InterfaceError,
    ):
        raise
    except Exception as unreadable:
        bound.error("notification context not read", error=type(unreadable).__name__)
        return {}


async def mail_values(conn: asyncpg.Connection, notification: Notification) -> dict[str, Any]:
    """`about` for the internship as recorded: one read, no wait. Every e-mail is asked for once
    the plan is saved (a change request's, since the `change-request-carries-comment` patch, too;
    its comment is in the workflow's values); nothing when the internship is not recorded (the
    e-mail then names it by its id only)."""
    row = await conn.fetchrow(
        """
        SELECT v.plan, i.status FROM plan_versions v
        LEFT JOIN internships i USING (internship_id)
        WHERE v.internship_id = $1 ORDER BY v.version DESC LIMIT 1
        """,
        notification.internship_id,
    )
    if row is None:
        return {}
    plan = InternshipPlan.model_validate_json(row["plan"])
    status = None
    if row["status"] is not None:
        try:
            status = InternshipStatus.model_validate_json(row["status"])
        except ValidationError:
            log.warning("status not readable", internship_id=notification.internship_id)
    return about(plan, notification, status)
