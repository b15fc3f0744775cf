"""The API under test: `create_app` on the test's Temporal, PostgreSQL, mail sink and worker.

Test modules import the `api` fixture and the helpers from here. It holds no tests itself.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from cli.demo import compress_plan
from models.plan import PARTIES, InternshipPlan, Language, Signatory
from models.status import Phase
from operations.access import create_api_key
from runtime.links import Purpose, make_token
from runtime.secret import load_or_create_secret
from runtime.settings import Settings
from tests.helpers import clock_held, running_worker, sample_plan, wait_for_phase


@dataclass
class Api:
    """An HTTP client on the app, with the parts behind it and a key of each role."""

    http: httpx.AsyncClient
    env: WorkflowEnvironment
    client: Client
    settings: Settings
    pool: asyncpg.Pool
    operator: dict[str, str]
    admin: dict[str, str]
    secret: bytes

    def party(
        self,
        internship_id: str,
        party: Signatory,
        purpose: Purpose,
        milestone_id: str | None = None,
        valid_for: timedelta = timedelta(days=30),
    ) -> dict[str, str]:
        """Authorization headers with a party link's token."""
        token = self.token(internship_id, party, purpose, milestone_id, valid_for)
        return {"Authorization": f"Bearer {token}"}

    def token(
        self,
        internship_id: str,
        party: Signatory,
        purpose: Purpose,
        milestone_id: str | None = None,
        valid_for: timedelta = timedelta(days=30),
    ) -> str:
        return make_token(self.secret, internship_id, party, purpose, milestone_id, valid_for)

    async def start(self, plan: InternshipPlan) -> httpx.Response:
        """Start through the API, as the operator, with the workflow's clock not skipping (tests
        move it with `advance_to`)."""
        with clock_held(self.env):
            return await self.http.post(
                "/api/internships", json=plan.model_dump(mode="json"), headers=self.operator
            )

    async def settle(self, internship_id: str, quiet: float = 0.5, within: float = 20) -> None:
        """Wait until the workflow has stopped recording (its activities are done)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        last = await self.recorded(internship_id)
        last_mail = await self._mails(internship_id)
        quiet_since = loop.time()
        while loop.time() < deadline:
            await asyncio.sleep(0.1)
            now = await self.recorded(internship_id), await self._mails(internship_id)
            if now != (last, last_mail):
                last, last_mail = now
                quiet_since = loop.time()
            elif loop.time() - quiet_since >= quiet:
                return
        raise AssertionError(f"internship {internship_id} kept recording for {within} s")

    async def _mails(self, internship_id: str) -> int:
        return int(
            await self.pool.fetchval(
                "SELECT count(*) FROM notifications WHERE internship_id = $1 AND status = 'sent'",
                internship_id,
            )
        )

    async def recorded(self, internship_id: str) -> tuple[int, int]:
        """(audit events, submissions) recorded for the internship so far."""
        audit = await self.pool.fetchval(
            "SELECT count(*) FROM audit_events WHERE internship_id = $1", internship_id
        )
        submissions = await self.pool.fetchval(
            "SELECT count(*) FROM submissions WHERE internship_id = $1", internship_id
        )
        return int(audit), int(submissions)


def compressed(
    seconds: float = 12,
    language: Language | None = None,
    lead_seconds: float = 5.0,
    badge_language: Language | None = None,
) -> InternshipPlan:
    """The sample plan in real time: the agreement deadline `lead_seconds` from now and every
    later date (to the end of validation) within `seconds` after it. The badge of such an
    internship is issued in the present, so its validFrom has passed when a verifier looks.
    `badge_language`: the language the badge's texts are said to be written in."""
    example = in_language(planned(), language)
    if badge_language is not None:
        badge = example.badge.model_copy(update={"language": badge_language})
        example = example.model_copy(update={"badge": badge})
    now = datetime.now().astimezone()
    return compress_plan(example, now, seconds, f"rt-{uuid.uuid4().hex[:12]}", lead_seconds)


async def finished_internship(
    api: Api,
    language: Language | None = None,
    badge_language: Language | None = None,
    badge: dict[str, Any] | None = None,
) -> InternshipPlan:
    """An internship run to its badge through the API in real time (about 15 s; the milestones
    are left to the reminder ladder); `badge` changes fields of the plan's badge template."""
    plan = compressed(language=language, badge_language=badge_language)
    if badge is not None:
        plan = plan.model_copy(update={"badge": plan.badge.model_copy(update=badge)})
    iid = plan.internship_id
    assert (await api.start(plan)).status_code == 201
    for party in ("intern", "tutor", "mentor"):
        approved = await api.http.post(
            f"/api/internships/{iid}/approvals",
            json={"submission_id": f"a-{party}", "party": party, "plan_version": 1},
            headers=api.party(iid, party, "approve"),
        )
        assert approved.status_code == 200, approved.text
    await wait_for_phase(api.client, iid, Phase.EVALUATION, within=60)
    for assessor, level in (("mentor", "excellent"), ("tutor", "good")):
        assessed = await api.http.post(
            f"/api/internships/{iid}/assessments",
            json={
                "submission_id": f"s-{assessor}",
                "assessor": assessor,
                "levels": {o.id: level for o in plan.learning_outcomes},
            },
            headers=api.party(iid, assessor, "assess"),
        )
        assert assessed.status_code == 200, assessed.text
    validated = await api.http.post(
        f"/api/internships/{iid}/validation",
        json={"submission_id": "v", "decision": "pass"},
        headers=api.operator,
    )
    assert validated.status_code == 200, validated.text
    outcome = await api.client.get_workflow_handle(f"internship-{iid}").result()
    assert outcome["phase"] == "completed", outcome
    return plan


def planned(days: float = 30) -> InternshipPlan:
    """The sample plan under a new id, its agreement deadline `days` from now."""
    return sample_plan(datetime.now().astimezone() + timedelta(days=days))


def in_language(plan: InternshipPlan, language: Language | None) -> InternshipPlan:
    """The plan with every party reading `language` (the institution reads the tutor's); as it
    is without one."""
    if language is None:
        return plan
    data = plan.model_dump(mode="json")
    for party in PARTIES:
        data[party]["language"] = language
    return InternshipPlan.model_validate(data)


def detail(response: httpx.Response) -> str:
    body: dict[str, Any] = response.json()
    return str(body.get("detail"))


@pytest_asyncio.fixture(loop_scope="session")
async def api(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> AsyncIterator[Api]:
    client = time_skipping_env.client
    app = create_app(settings, client=client, pool=pool)
    _, operator_key = await create_api_key(pool, "test-operator", "operator")
    _, admin_key = await create_api_key(pool, "test-admin", "admin")
    async with running_worker(client, settings, pool):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url=settings.public_base_url, timeout=60
        ) as http:
            yield Api(
                http=http,
                env=time_skipping_env,
                client=client,
                settings=settings,
                pool=pool,
                operator={"Authorization": f"Bearer {operator_key}"},
                admin={"Authorization": f"Bearer {admin_key}"},
                secret=load_or_create_secret(settings),
            )
