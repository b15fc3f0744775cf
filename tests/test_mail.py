"""E-mail: templates for every kind in English and Italian (text and HTML), composition, and what
happens when the mail server refuses a recipient for good or is down for a while."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import asyncpg
import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.notify import NotifyActivities
from activities.records import RecordActivities
from embedded.mail_sink import MailSink, OutboxWriter
from mail.context import MILESTONE_KINDS, about
from mail.sending import Mailer, PermanentDeliveryError, TransientDeliveryError
from mail.templates import render, template_names
from models.activities import AuditEvent, Notification, NotificationKind
from models.ids import message_id_for
from models.plan import InternshipPlan
from models.state import InternshipState
from models.status import Phase
from models.submissions import ChangeRequest, Validation, Withdrawal
from operations import internships as ops
from runtime.clients import create_pool
from runtime.links import read_token
from runtime.migrations import apply_migrations
from runtime.secret import load_or_create_secret
from runtime.settings import Settings
from tests.conftest import free_port, make_settings
from tests.helpers import (
    advance_to,
    approve_all,
    assess,
    audit_rows,
    clock_held,
    eventually,
    load_outbox,
    report_and_feedback,
    running_worker,
    sample_plan,
    sent,
    wait_for_phase,
)
from workflows import rules

LANGUAGES = ("en", "it", "de", "fr", "es")
GREETINGS = {"en": "Dear", "it": "Gentile", "de": "Guten Tag", "fr": "Bonjour", "es": "Estimado/a"}

#: The values the workflow (or the badge activity) gives each kind, besides `internship`.
KIND_VALUES: dict[str, dict[str, str]] = {
    "approval_request": {"version": "1"},
    "agreement_reminder": {"version": "2", "deadline": "2027-02-15 18:00 CET"},
    "change_request": {"party": "mentor", "version": "1"},
    "milestone_request": {"milestone": "Mid-term review"},
    "reminder": {"milestone": "Mid-term review"},
    "escalation": {"milestone": "Mid-term review"},
    "missed": {"milestone": "Mid-term review"},
    "assessment_request": {},
    "final_review": {"placement_url": "https://internflow.example/p/t-2?x=y"},
    "assessment_reminder": {"deadline": "2027-06-11 17:00 CEST"},
    "validation_request": {},
    "outcome": {"reason": "no assessment from mentor in time"},
    "withdrawal": {"reason": "moved abroad."},
    "cancellation": {"reason": "the agreement was not approved"},
    "badge": {"badge": "Web development", "verify_url": "https://school.example/verify/1"},
    "revocation": {"badge": "Web development", "reason": "issued by mistake"},
    "suspension": {"badge": "Web development", "reason": "under review"},
    "reinstatement": {"badge": "Web development", "reason": "review closed"},
    "delivery_failed": {
        "failed_kind": "reminder",
        "failed_role": "intern",
        "error": "recipient refused with SMTP [550]",
    },
}
#: Kinds that ask nothing their reader can do on a page: no button (the escalation names whom
#: the tutor should contact; the outcome explains what it means).
NO_ACTION = {"withdrawal", "cancellation", "outcome", "escalation"}


def _notification(kind: str, language: str = "en", **values: str) -> Notification:
    return Notification.model_validate(
        {
            "notification_id": f"internship-t-1/{kind}/k/intern",
            "internship_id": "t-1",
            "kind": kind,
            "recipient_role": "intern",
            "recipient_email": "giulia@students.example.org",
            "recipient_name": "Giulia <Esposito> & Co",
            "language": language,
            "planned_at": datetime(2027, 3, 1, 9, tzinfo=UTC),
            "values": {"internship": "t-1", **KIND_VALUES[kind], **values},
        }
    )


# ----------------------------------------------------------------- templates


def test_every_kind_has_a_template() -> None:
    kinds = set(get_args(NotificationKind))
    assert {"revocation", "delivery_failed"} <= kinds
    assert set(KIND_VALUES) == kinds
    assert template_names() == sorted(kinds)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", sorted(KIND_VALUES))
def test_every_message_renders_as_text_and_escaped_html(kind: str, language: str) -> None:
    link = "https://internflow.example/p/t-1?party=intern&sig=abc"
    values = {
        "name": "Giulia <b>Esposito</b>",
        "internship": "t-1",
        "link": link,
        **KIND_VALUES[kind],
    }
    message = render(kind, language, values)  # type: ignore[arg-type]

    assert message.subject and "\n" not in message.subject and "{" not in message.subject
    greeting = GREETINGS[language]
    closing = ":" if language == "es" else ","
    assert message.text.startswith(f"{greeting} Giulia <b>Esposito</b>{closing}\n\n")
    assert "\n-- \n" in message.text and "&lt;" not in message.text
    assert all(len(line) <= 76 or "://" in line for line in message.text.splitlines())
    assert f'<html lang="{language}">' in message.html
    assert "Giulia &lt;b&gt;Esposito&lt;/b&gt;" in message.html
    assert "<b>" not in message.html
    for key, value in KIND_VALUES[kind].items():
        if kind == "change_request" or value in ("intern", "mentor") or key == "failed_kind":
            continue  # roles and e-mail kinds appear translated
        assert value.rstrip(".") in " ".join(message.text.split()), value
    if kind in NO_ACTION:
        assert link not in message.text and "href" not in message.html
    else:
        assert f"\n{link}\n" in message.text
        assert 'href="https://internflow.example/p/t-1?party=intern&amp;sig=abc"' in message.html
    assert "{{" not in message.text + message.html


#: Who receives each kind (the workflow's recipients; the operator is the institution).
RECIPIENTS: dict[str, tuple[str, ...]] = {
    "approval_request": ("intern", "tutor", "mentor"),
    "agreement_reminder": ("mentor",),
    "change_request": ("operator",),
    "milestone_request": ("intern", "mentor"),
    "reminder": ("intern", "mentor"),
    "escalation": ("tutor",),
    "missed": ("operator",),
    "assessment_request": ("mentor", "tutor"),
    "assessment_reminder": ("tutor",),
    "validation_request": ("tutor",),
    "outcome": ("intern", "tutor"),
    "withdrawal": ("intern", "mentor"),
    "cancellation": ("intern", "tutor", "mentor"),
    "badge": ("intern",),
    "revocation": ("intern",),
    "suspension": ("intern",),
    "reinstatement": ("intern",),
    "delivery_failed": ("operator",),
    "final_review": ("intern",),
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_says_who_what_and_by_when(language: str) -> None:
    """With what the records say (`about`), each e-mail names the intern and the company, the
    milestone and its due date in the internship's time zone, what is asked and by when."""
    plan = sample_plan(datetime(2027, 2, 15, 17, tzinfo=UTC))
    milestone = plan.milestones[1]
    due = {
        "en": "Monday, April 12, 2027, 5:00 PM CEST",
        "it": "lunedì 12 aprile 2027, 17:00 CEST",
        "de": "Montag, 12. April 2027, 17:00 MESZ",
        "fr": "lundi 12 avril 2027, 17:00 CEST",
        "es": "lunes, 12 de abril de 2027, 17:00 CEST",
    }[language]
    assert plan.period.time_zone == "Europe/Berlin" and milestone.due.hour == 15  # UTC
    assert set(RECIPIENTS) == set(KIND_VALUES)
    for kind, roles in RECIPIENTS.items():
        for role in roles:
            key = milestone.id if kind in MILESTONE_KINDS else "c-1"
            notification = Notification.model_validate(
                {
                    **_notification(kind, language).model_dump(),
                    "notification_id": f"internship-{plan.internship_id}/{kind}/{key}/{role}",
                    "internship_id": plan.internship_id,
                    "recipient_role": role,
                    "values": {
                        **KIND_VALUES[kind],
                        "internship": plan.internship_id,
                        **({"milestone": milestone.title} if kind in MILESTONE_KINDS else {}),
                    },
                }
            )
            context = about(plan, notification)
            if kind == "change_request":
                context["comment"] = "Please add two lab days."
            message = render(
                kind,  # type: ignore[arg-type]
                language,  # type: ignore[arg-type]
                {"name": "N", "link": "https://x.example/p/t", **notification.values, **context},
            )
            text = " ".join(message.text.split())
            where = f"{kind} to the {role} ({language})"
            # Sentences put together from parts keep their spaces ("minutes. Please").
            assert not re.search(r"[a-zà-ÿ][.;:][A-ZÀ-Ý]", message.subject + text), where
            assert plan.company.name in text, where
            if role != "intern":
                assert plan.intern.name in text + message.subject, where
            if kind in MILESTONE_KINDS:
                assert milestone.title in message.subject and due in text, where
            if kind in ("approval_request", "assessment_request", "assessment_reminder"):
                assert context["deadline"] in text, where
            assert f"{greeting_of(language)} N" in message.text, where
    escalation = render(
        "escalation",
        language,  # type: ignore[arg-type]
        {
            "name": "T",
            "internship": plan.internship_id,
            "milestone": milestone.title,
            **about(plan, _in(plan, "escalation", milestone.id, "tutor", language)),
        },
    )
    # Who has not submitted, and how to reach them.
    assert plan.intern.email in escalation.text and plan.mentor.email in escalation.text
    assert plan.mentor.name in escalation.html
    change = render(
        "change_request",
        language,  # type: ignore[arg-type]
        {
            "name": "O",
            "internship": plan.internship_id,
            "party": "mentor",
            "version": "1",
            "comment": "Please add <two> lab days.",
            **{
                k: v
                for k, v in about(plan, _in(plan, "change_request", "c-1", "operator")).items()
                if k != "comment"
            },
        },
    )
    assert "Please add <two> lab days." in change.text
    assert "Please add &lt;two&gt; lab days." in change.html


def greeting_of(language: str) -> str:
    return GREETINGS[language]


def _in(plan: InternshipPlan, kind: str, key: str, role: str, language: str = "en") -> Notification:
    return Notification(
        notification_id=f"internship-{plan.internship_id}/{kind}/{key}/{role}",
        internship_id=plan.internship_id,
        kind=kind,  # type: ignore[arg-type]
        recipient_role=role,
        recipient_email="x@y.example",
        recipient_name="X",
        language=language,  # type: ignore[arg-type]
        planned_at=datetime(2027, 3, 1, tzinfo=UTC),
        values={"internship": plan.internship_id},
    )


async def test_a_change_request_e_mail_carries_its_comment_and_reads_nothing_beside_it(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    """The comment travels in the workflow's values: the activity sends it without waiting for
    the change request's own record (never written here), and names the intern and company from
    the plan the workflow saved before asking for the e-mail."""
    plan = sample_plan(datetime(2027, 2, 15, 17, tzinfo=UTC))
    await ActivityEnvironment().run(RecordActivities(pool).save_plan, plan)
    comment = "Two lab days, please."
    notification = _in(plan, "change_request", "c-1", "operator").model_copy(
        update={
            "values": {
                "internship": plan.internship_id,
                "party": "mentor",
                "version": "1",
                "comment": comment,
            }
        }
    )
    loop = asyncio.get_running_loop()
    began = loop.time()
    notify = NotifyActivities(pool, Mailer(settings))
    assert await ActivityEnvironment().run(notify.send, notification) is True
    took = loop.time() - began
    assert await pool.fetchval("SELECT count(*) FROM submissions") == 0
    (message,) = load_outbox(settings)
    body = message.get_body(("plain",))
    assert body is not None
    text = " ".join(str(body.get_content()).split())
    assert comment in text and plan.mentor.name in text and plan.company.name in text
    assert took < 5, f"the e-mail took {took:.1f} s: something waited"


async def test_a_change_request_reaches_the_institution_with_its_comment(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    """Through the workflow on the real parts: the change request's e-mail to the institution
    quotes the comment, and the audit trail keeps it."""
    env, client = time_skipping_env, time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=10))
    iid = plan.internship_id
    comment = "Please plan two lab days on Fridays."
    async with running_worker(client, settings, pool):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        await ops.request_changes(
            client,
            iid,
            ChangeRequest(submission_id="c-1", party="mentor", plan_version=1, comment=comment),
        )

        async def told() -> bool:
            return ("change_request", plan.institution.email) in sent(load_outbox(settings), iid)

        await eventually(told, "the change request e-mail")
        await ops.withdraw(client, iid, Withdrawal(submission_id="w-1", reason="moved abroad"))
        assert (await handle.result()).phase == Phase.WITHDRAWN
    message = next(m for m in load_outbox(settings) if m["X-Internflow-Kind"] == "change_request")
    body = message.get_body(("plain",))
    assert body is not None
    assert comment in " ".join(str(body.get_content()).split())
    rows = [r for r in await audit_rows(pool, iid) if r["kind"] == "change_request"]
    assert [json.loads(r["detail"])["comment"] for r in rows] == [comment]


async def test_a_ladder_e_mail_leaves_the_read_model_to_the_workflow(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    """A reminder goes out past the milestone's reminder time, when the status last recorded
    makes the internship overdue: the e-mail's activity writes its `notifications` row and
    nothing of the read model. The overdue flag is the workflow's to record
    (`test_workflow_fast.test_a_ladder_step_that_makes_the_internship_overdue_records_it`)."""
    plan = sample_plan(datetime(2027, 2, 15, 17, tzinfo=UTC))
    milestone = plan.milestones[0]
    records = RecordActivities(pool)
    await ActivityEnvironment().run(records.save_plan, plan)
    before = milestone.due - timedelta(hours=1)
    recorded = rules.status(plan, InternshipState(started=True, phase=Phase.IN_PROGRESS), before)
    await ActivityEnvironment().run(
        records.record_event,
        AuditEvent(
            event_id=f"internship-{plan.internship_id}/phase/in_progress",
            internship_id=plan.internship_id,
            workflow_id=f"internship-{plan.internship_id}",
            run_id="r",
            plan_version=1,
            actor="system",
            kind="phase",
            phase="in_progress",
            occurred_at=before,
            status=recorded,
        ),
    )
    reminded_at = milestone.due + plan.reminder_policy.remind_after + timedelta(hours=1)
    assert recorded.at(reminded_at).overdue  # what an e-mail that wrote the flag would write
    reminder = _in(plan, "reminder", milestone.id, "intern").model_copy(
        update={
            "planned_at": reminded_at,
            "values": {"internship": plan.internship_id, "milestone": milestone.title},
        }
    )
    notify = NotifyActivities(pool, Mailer(settings))
    assert await ActivityEnvironment().run(notify.send, reminder) is True
    assert [m["X-Internflow-Kind"] for m in load_outbox(settings)] == ["reminder"]
    row = await pool.fetchrow(
        "SELECT overdue, updated_at FROM internships WHERE internship_id = $1",
        plan.internship_id,
    )
    assert row is not None and (row["overdue"], row["updated_at"]) == (False, before)


def test_italian_messages_name_roles_in_italian() -> None:
    change = render(
        "change_request",
        "it",
        {"name": "Marco", "internship": "t-1", "link": "x", **KIND_VALUES["change_request"]},
    )
    assert "Il tutor aziendale chiede modifiche" in change.html
    failed = render(
        "delivery_failed",
        "it",
        {"name": "Ufficio", "internship": "t-1", "link": "x", **KIND_VALUES["delivery_failed"]},
    )
    assert "al tirocinante" in failed.html


def test_a_missing_value_is_an_error_not_a_blank() -> None:
    with pytest.raises(Exception, match="'reason' is undefined"):
        render("outcome", "en", {"name": "A", "internship": "t-1", "link": "x"})


def test_composed_message_has_both_parts_ids_and_the_default_link(settings: Settings) -> None:
    mailer = Mailer(settings)
    base = settings.public_base_url.rstrip("/")
    notification = _notification("milestone_request", "it")
    message = mailer.compose(notification, message_id_for(notification.notification_id))

    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert message["Message-ID"] == message_id_for(notification.notification_id)
    assert message["X-Internflow-Internship"] == "t-1"
    assert message["X-Internflow-Kind"] == "milestone_request"
    assert message["Content-Language"] == "it"
    assert message["Subject"] == "La sua relazione per Mid-term review (t-1)"
    assert message["To"].addresses[0].addr_spec == "giulia@students.example.org"
    # A request for the intern's report carries the intern's own signed link to the report form.
    text = message.get_body(("plain",))
    assert text is not None
    token = re.search(rf"{re.escape(base)}/p/(\S+)", text.get_content())
    assert token is not None
    grant = read_token(load_or_create_secret(settings), token.group(1))
    assert (grant.internship_id, grant.party, grant.purpose, grant.milestone_id) == (
        "t-1",
        "intern",
        "report",
        "k",
    )
    # An e-mail that asks nothing of its recipient has no button (no dead link to a page the
    # reader cannot open); one to the institution leads to the internship on the dashboard.
    assert mailer.default_link(_notification("outcome")) is None
    outcome = mailer.compose(_notification("outcome"), "<z@internflow>")
    for part in outcome.iter_parts():
        assert f"{base}/p/" not in part.get_content() and "href" not in part.get_content()
    missed = _notification("missed").model_copy(update={"recipient_role": "operator"})
    assert mailer.default_link(missed) == f"{base}/admin/internships/t-1"

    signed_link = _notification("milestone_request", link="https://x.example/p/t-1?sig=1")
    custom = mailer.compose(signed_link, "<x@internflow>").get_body(("html",))
    assert custom is not None and 'href="https://x.example/p/t-1?sig=1"' in custom.get_content()

    for kind in ("revocation", "suspension", "reinstatement"):
        status = mailer.compose(_notification(kind), "<y@internflow>").get_body(("plain",))
        assert status is not None and f"{base}/verify/" in status.get_content()


# ----------------------------------------------------------------- failures of one send


async def test_a_broken_template_fails_for_good_and_is_recorded(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    notify = NotifyActivities(pool, Mailer(settings))
    broken = _notification("outcome")
    broken = broken.model_copy(update={"values": {"internship": "t-1"}})  # no reason
    with pytest.raises(ApplicationError) as failure:
        await ActivityEnvironment().run(notify.send, broken)
    assert failure.value.non_retryable and failure.value.type == "TemplateError"
    row = await pool.fetchrow("SELECT status, error FROM notifications")
    assert row is not None and row["status"] == "failed" and "'reason' is undefined" in row["error"]


async def test_a_server_down_is_retried_and_the_workflows_give_up_is_recorded(
    settings: Settings, pool: asyncpg.Pool, mail_sink: MailSink
) -> None:
    """The activity never guesses its last attempt: a transient failure is always raised for a
    retry, and when the workflow's give-up time has passed, its `notification_failed` record
    marks the e-mail failed (the workflow owns giving up)."""
    notify = NotifyActivities(pool, Mailer(settings))
    notification = _notification("reminder")
    mail_sink.stop()
    for _ in range(2):
        with pytest.raises(TransientDeliveryError, match="cannot reach the SMTP server"):
            await ActivityEnvironment().run(notify.send, notification)
    row = await pool.fetchrow("SELECT status, attempts, error FROM notifications")
    assert row is not None and (row["status"], row["attempts"]) == ("sending", 2)
    assert "cannot reach the SMTP server" in row["error"]

    await pool.execute(
        "INSERT INTO internships (internship_id, workflow_id, institution_id, company_id, phase, "
        "plan_version, start_at, end_at, updated_at) "
        "VALUES ('t-1', 'internship-t-1', 'i', 'c', 'in_progress', 1, now(), now(), now())"
    )
    given_up = "activity ScheduleToClose timeout"
    event = AuditEvent(
        event_id=f"internship-t-1/notification_failed/{notification.notification_id}",
        internship_id="t-1",
        workflow_id="internship-t-1",
        run_id="r",
        plan_version=1,
        actor="system",
        kind="notification_failed",
        phase="in_progress",
        occurred_at=datetime(2027, 3, 2, 9, tzinfo=UTC),
        detail={"error": given_up},
    )
    assert await ActivityEnvironment().run(RecordActivities(pool).record_event, event) is True
    row = await pool.fetchrow("SELECT status, attempts, error FROM notifications")
    assert row is not None and tuple(row) == ("failed", 2, given_up)


# ----------------------------------------------------------------- a server that refuses


class _RefusingHandler:
    """An SMTP server that refuses some recipients for good (550, quoting the address as real
    servers do) and stores everything else in the outbox, as the mail sink does."""

    def __init__(self, outbox: Path, refused: set[str]) -> None:
        self.writer = OutboxWriter(outbox)
        self.refused = refused

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refused:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.writer.write(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


@dataclasses.dataclass
class RefusingStack:
    settings: Settings
    pool: asyncpg.Pool
    refused: set[str]


@pytest_asyncio.fixture(loop_scope="session")
async def refusing(tmp_path: Path, database: str) -> AsyncIterator[RefusingStack]:
    """Settings, pool and a running SMTP server that refuses the addresses put in `refused`."""
    settings = make_settings(
        tmp_path,
        database_url=database,
        smtp_port=free_port(),
        task_queue=f"test-{uuid.uuid4().hex[:8]}",
    )
    settings.outbox_path.mkdir(parents=True)
    refused: set[str] = set()
    controller = Controller(
        _RefusingHandler(settings.outbox_path, refused),
        hostname="127.0.0.1",
        port=settings.smtp_port,
    )
    controller.start()
    await apply_migrations(settings.database_url)
    pool = await create_pool(settings)
    try:
        yield RefusingStack(settings, pool, refused)
    finally:
        await pool.close()
        controller.stop()


class _SessionRecorder(_RefusingHandler):
    """Also notes which client connection (its address and port) carried each message."""

    def __init__(self, outbox: Path, refused: set[str]) -> None:
        super().__init__(outbox, refused)
        self.peers: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.peers.append(session.peer)
        return await super().handle_DATA(server, session, envelope)


async def test_smtp_sessions_are_kept_between_messages_and_dropped_after_a_failure(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, smtp_port=free_port())
    settings.outbox_path.mkdir(parents=True)
    handler = _SessionRecorder(settings.outbox_path, {"gone@example.org"})
    controller = Controller(handler, hostname="127.0.0.1", port=settings.smtp_port)
    controller.start()
    mailer = Mailer(settings)

    def mail(to: str) -> Any:
        notification = _notification("outcome").model_copy(update={"recipient_email": to})
        return mailer.write(notification, message_id_for(to))

    try:
        await mailer.send(mail("a@example.org"))
        await mailer.send(mail("b@example.org"))
        assert len(handler.peers) == 2 and handler.peers[0] == handler.peers[1]

        with pytest.raises(PermanentDeliveryError):
            await mailer.send(mail("gone@example.org"))
        await mailer.send(mail("c@example.org"))  # not on the session that failed
        assert handler.peers[2] != handler.peers[1]

        controller.stop()  # the kept session dies with the server
        controller = Controller(handler, hostname="127.0.0.1", port=settings.smtp_port)
        controller.start()
        await mailer.send(mail("d@example.org"))
        assert handler.peers[3] != handler.peers[2]

        # Concurrent messages each get a session of their own; all arrive.
        await asyncio.gather(*(mailer.send(mail(f"e{i}@example.org")) for i in range(4)))
        assert len(handler.peers) == 8 and len(set(handler.peers[4:])) == 4
        received = sorted(m["To"].addresses[0].addr_spec for m in load_outbox(settings))
        assert received == sorted(
            ["a@example.org", "b@example.org", "c@example.org", "d@example.org"]
            + [f"e{i}@example.org" for i in range(4)]
        )
    finally:
        await mailer.close()
        controller.stop()


async def test_a_refused_recipient_is_recorded_and_the_operator_told(
    time_skipping_env: WorkflowEnvironment,
    refusing: RefusingStack,
    capfd: pytest.CaptureFixture[str],
) -> None:
    env, client = time_skipping_env, time_skipping_env.client
    settings, pool = refusing.settings, refusing.pool
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=10))
    iid, intern = plan.internship_id, plan.intern.email
    refusing.refused.add(intern)
    async with running_worker(client, settings, pool):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        await approve_all(client, plan)
        await wait_for_phase(client, iid, Phase.AWAITING_START)

        async def request_refusal_recorded() -> bool:
            # E-mails go out beside the main line: the refused request is recorded as failed
            # once the workflow has its answer (a withdrawal before that would drop it).
            kinds = [r["kind"] for r in await audit_rows(pool, iid)]
            return "notification_failed" in kinds

        await eventually(request_refusal_recorded, "the refused approval request recorded")
        await ops.withdraw(client, iid, Withdrawal(submission_id="w-1", reason="moved abroad"))
        outcome = await handle.result()
    assert outcome.phase == Phase.WITHDRAWN  # the refusals blocked nothing

    mails = sent(load_outbox(settings), iid)
    operator = plan.institution.email
    assert not [m for m in mails if m[1] == intern]
    assert [m for m in mails if m[0] == "delivery_failed"] == [
        ("delivery_failed", operator),
        ("delivery_failed", operator),
    ]
    failed = await pool.fetch(
        "SELECT notification_id, status, attempts, error FROM notifications "
        "WHERE recipient_role = 'intern' ORDER BY notification_id"
    )
    assert [(r["notification_id"], r["status"], r["attempts"], r["error"]) for r in failed] == [
        (
            f"{handle.id}/approval_request/v1/intern",
            "failed",
            1,
            "recipient refused with SMTP [550]",
        ),
        (f"{handle.id}/withdrawal/final/intern", "failed", 1, "recipient refused with SMTP [550]"),
    ]
    notices = await pool.fetch(
        "SELECT notification_id, status FROM notifications WHERE kind = 'delivery_failed' "
        "ORDER BY notification_id"
    )
    assert [tuple(r) for r in notices] == [
        (f"{handle.id}/delivery_failed/approval_request-v1-intern/operator", "sent"),
        (f"{handle.id}/delivery_failed/withdrawal-final-intern/operator", "sent"),
    ]
    texts = [
        " ".join(str(body.get_content()).split())
        for m in load_outbox(settings)
        if m["X-Internflow-Kind"] == "delivery_failed"
        and (body := m.get_body(("plain",))) is not None
    ]
    assert len(texts) == 2
    assert all("recipient refused with SMTP [550]" in text for text in texts)
    assert all(intern not in text for text in texts)
    # The e-mail's kind in the reader's words (the institution reads the tutor's Italian).
    assert plan.tutor.language == "it"
    assert ["“learning agreement da approvare”" in text for text in texts] == [True, False]

    failures = [r for r in await audit_rows(pool, iid) if r["kind"] == "notification_failed"]
    assert len(failures) == 2
    # No address in the records of the failure, nor in any log line.
    assert intern not in str([dict(r) for r in failures])
    out, err = capfd.readouterr()
    assert intern not in out + err
    assert "recipient refused" in out + err


async def test_a_refused_badge_is_kept_and_the_operator_told_once(
    time_skipping_env: WorkflowEnvironment,
    refusing: RefusingStack,
) -> None:
    """The badge e-mail is an ordinary notification: refused for good, the credential stays
    stored with the reason, the workflow tells the operator once, and the internship completes."""
    env, client = time_skipping_env, time_skipping_env.client
    settings, pool = refusing.settings, refusing.pool
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=10))
    iid = plan.internship_id
    refusing.refused.add(plan.intern.email)
    async with running_worker(client, settings, pool):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        await approve_all(client, plan)
        await wait_for_phase(client, iid, Phase.AWAITING_START)
        for milestone in plan.milestones:
            await advance_to(env, handle, milestone.due - timedelta(hours=1))
            await report_and_feedback(client, plan, milestone.id)
        await advance_to(env, handle, plan.period.end + timedelta(hours=1))
        await assess(client, plan, mentor="good", tutor="good")
        await ops.validate(client, iid, Validation(submission_id="v-1", decision="pass"))
        outcome = await handle.result()
    assert outcome.phase == Phase.COMPLETED
    assert outcome.credential_id is not None

    row = await pool.fetchrow("SELECT emailed_at, email_error FROM credentials")
    assert row is not None and tuple(row) == (None, "recipient refused with SMTP [550]")
    badge_mail = await pool.fetchrow(
        "SELECT status, attempts, error FROM notifications WHERE kind = 'badge'"
    )
    assert badge_mail is not None
    assert tuple(badge_mail) == ("failed", 1, "recipient refused with SMTP [550]")
    notice = await pool.fetchrow(
        "SELECT status FROM notifications WHERE notification_id = $1",
        f"{handle.id}/delivery_failed/badge-final-intern/operator",
    )
    assert notice is not None and notice["status"] == "sent"
    notice_id = message_id_for(f"{handle.id}/delivery_failed/badge-final-intern/operator")
    told = [m for m in load_outbox(settings) if m["Message-ID"] == notice_id]
    assert [m["To"].addresses[0].addr_spec for m in told] == [plan.institution.email]
    failed = await pool.fetchval(
        "SELECT count(*) FROM audit_events WHERE event_id = $1",
        f"{handle.id}/notification_failed/{handle.id}/badge",
    )
    assert failed == 1


# ----------------------------------------------------------------- a server down for a while


async def _wait_for_mail(settings: Settings, count: int, within: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while len(list(settings.outbox_path.glob("*.eml"))) < count:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"fewer than {count} e-mails arrived")
        await asyncio.sleep(0.1)


async def test_a_mail_server_down_for_a_while_delays_mail_but_loses_none(
    time_skipping_env: WorkflowEnvironment,
    settings: Settings,
    pool: asyncpg.Pool,
    mail_sink: MailSink,
) -> None:
    env, client = time_skipping_env, time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=30))
    iid = plan.internship_id
    async with running_worker(client, settings, pool):
        mail_sink.stop()
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)

        async def each_request_retried() -> bool:
            rows = await pool.fetch("SELECT attempts FROM notifications")
            return len(rows) == 3 and all(r["attempts"] >= 2 for r in rows)

        # The three approval requests go out side by side: each is tried and deferred, none
        # waits for another.
        await eventually(each_request_retried, "every approval request tried twice")
        deferred = await pool.fetch("SELECT status, attempts, error FROM notifications")
        assert [(r["status"], r["error"].split(" (")[0]) for r in deferred] == [
            ("sending", f"cannot reach the SMTP server at 127.0.0.1:{settings.smtp_port}")
        ] * 3
        assert not settings.outbox_path.exists() or not mail_sink.messages()
        mail_sink.start()
        await _wait_for_mail(settings, 3)

        await approve_all(client, plan)
        await wait_for_phase(client, iid, Phase.AWAITING_START)
        for milestone in plan.milestones:
            await advance_to(env, handle, milestone.due - timedelta(hours=1))
            await report_and_feedback(client, plan, milestone.id)
        await advance_to(env, handle, plan.period.end + timedelta(hours=1))
        await assess(client, plan, mentor="good", tutor="good")
        before_badge = len(mail_sink.messages())
        mail_sink.stop()  # down again while the badge is issued
        await ops.validate(client, iid, Validation(submission_id="v-1", decision="pass"))

        async def badge_stored_not_sent() -> bool:
            row = await pool.fetchrow("SELECT emailed_at FROM credentials")
            return row is not None and row["emailed_at"] is None

        await eventually(badge_stored_not_sent, "the badge stored while its e-mail waits")
        assert len(mail_sink.messages()) == before_badge
        mail_sink.start()
        outcome = await handle.result()
    assert outcome.phase == Phase.COMPLETED

    outbox = load_outbox(settings)
    badges = [m for m in outbox if m["X-Internflow-Kind"] == "badge"]
    assert len(badges) == 1
    rows = await pool.fetch("SELECT message_id, status, attempts FROM notifications")
    assert {r["status"] for r in rows} == {"sent"}
    # Every e-mail (the badge's too) arrived exactly once: one message per notification.
    assert sorted(str(m["Message-ID"]) for m in outbox) == sorted(r["message_id"] for r in rows)
    requests = await pool.fetch(
        "SELECT attempts FROM notifications WHERE kind = 'approval_request' ORDER BY created_at"
    )
    assert [r["attempts"] > 1 for r in requests] == [True, True, True]
    stored = await pool.fetchrow("SELECT emailed_at, email_error FROM credentials")
    assert stored is not None and stored["emailed_at"] is not None and stored["email_error"] is None
    assert "notification_failed" not in [r["kind"] for r in await audit_rows(pool, iid)]


#: The subject of the intern's final review e-mail: "on" joined with the article as each
#: language writes it ("sul suo tirocinio", never "su il suo tirocinio").
FINAL_REVIEW_SUBJECTS = {
    "en": "Your view on your internship at {company} ({iid}): self-assessment and placement",
    "it": "Il suo giudizio sul suo tirocinio presso {company} ({iid}): autovalutazione e tirocinio",
    "de": "Ihre Sicht auf Ihr Praktikum bei {company} ({iid}): Selbsteinschätzung und Praktikum",
    "fr": "Votre avis sur votre stage chez {company} ({iid}) : auto-évaluation et stage",
    "es": "Su opinión sobre sus prácticas en {company} ({iid}): autoevaluación y prácticas",
}
#: The badge e-mail's wallet offer, for 1 day and for 7: the language's form for each count.
OFFER_DAYS = {
    "en": ("within 1 day;", "within 7 days;"),
    "it": ("entro 1 giorno;", "entro 7 giorni;"),
    "de": ("innerhalb von 1 Tag;", "innerhalb von 7 Tagen;"),
    "fr": ("dans un délai de 1 jour", "dans un délai de 7 jours"),
    "es": ("en un plazo de 1 día;", "en un plazo de 7 días;"),
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_final_review_subject_and_the_badge_offer_read_right(language: str) -> None:
    plan = sample_plan(datetime(2027, 2, 15, 17, tzinfo=UTC))
    notification = Notification.model_validate(
        {
            **_notification("final_review", language).model_dump(),
            "notification_id": f"internship-{plan.internship_id}/final_review/end/intern",
            "internship_id": plan.internship_id,
            "values": {**KIND_VALUES["final_review"], "internship": plan.internship_id},
        }
    )
    review = render(
        "final_review",
        language,  # type: ignore[arg-type]
        {
            "name": "N",
            "link": "https://x.example/p/t",
            **notification.values,
            **about(plan, notification),
        },
    )
    expected = FINAL_REVIEW_SUBJECTS[language].format(
        company=plan.company.name, iid=plan.internship_id
    )
    assert review.subject == expected
    one, many = OFFER_DAYS[language]
    for days, said in ((1, one), (7, many)):
        badge = render(
            "badge",
            language,  # type: ignore[arg-type]
            {
                "name": "N",
                "internship": plan.internship_id,
                "link": "https://x.example/b/1",
                **KIND_VALUES["badge"],
                "wallet_offer_url": "openid-credential-offer://?x=1",
                "wallet_tx_code": "1234",
                "wallet_offer_days": days,
            },
        )
        assert said in " ".join(badge.text.split()), (days, badge.text)
