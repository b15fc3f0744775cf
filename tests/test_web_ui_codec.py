"""Admins read encrypted histories in the Temporal Web UI of the embedded stack: the stack with
payload encryption on, an internship started through the API, an admin who signs in and opens
its workflow in the Web UI (served by the API under /temporal, on the codec endpoint's origin)
in headless Chromium and reads the intern's name in clear; a Web UI that offers no way to change
an internship and refuses the calls that would; a codec endpoint that tells a caller without an
admin session or key what to do; and the Temporal CLI decrypting through it, or failing with
only its deadline when refused (what the documentation tells CLI users to expect)."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
from google.api import annotations_pb2
from playwright.async_api import Browser, Page, async_playwright, expect
from temporalio.api.enums.v1 import EventType
from temporalio.api.operatorservice.v1 import service_pb2 as operator_service
from temporalio.api.workflowservice.v1 import service_pb2 as workflow_service
from temporalio.client import Client, WorkflowExecutionStatus

from api.web_ui import READ_ONLY, READS, refusal
from embedded.ports import throwaway_settings
from embedded.stack import EmbeddedStack
from embedded.temporal_server import temporal_binary
from models.plan import InternshipPlan
from operations.access import create_api_key
from runtime.clients import create_pool
from runtime.codec import new_key
from runtime.settings import Settings
from tests.conftest import FAST_POSTGRES
from tests.test_api_harness import planned
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

SCREENSHOT = Path("/tmp/internflow-screenshots/web-ui-decrypted.png")
READ_ONLY_SCREENSHOT = SCREENSHOT.with_name("web-ui-read-only.png")
#: The Web UI's buttons that change a workflow (the workflow page's menu, the list's start).
WRITE_BUTTONS = (
    "terminate-button",
    "reset-button",
    "signal-button",
    "update-button",
    "start-workflow-button",
)
#: What a page of the UI does to send one call to its HTTP API, as the UI itself sends it: with
#: the UI's CSRF token (its `_csrf` cookie) and the admin's session cookie. The status and body.
UI_FETCH = """async ([method, url, body]) => {
    const csrf = document.cookie.split("; ").find((c) => c.startsWith("_csrf="));
    const headers = {"Content-Type": "application/json", "Caller-Type": "operator"};
    if (csrf) headers["X-CSRF-TOKEN"] = csrf.slice("_csrf=".length);
    const init = {method, headers, credentials: "include"};
    if (body !== null) init.body = JSON.stringify(body);
    const answer = await fetch(url, init);
    return [answer.status, await answer.text()];
}"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def encrypted_stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Settings, str, str]]:
    """The embedded stack (PostgreSQL, Temporal, the real worker and API) with payload
    encryption on; yields its settings, an admin key and an operator key."""
    settings = throwaway_settings(
        tmp_path_factory.mktemp("stack"),
        codec_keys=json.dumps({"k1": new_key()}),
        codec_key_id="k1",
    )
    async with EmbeddedStack(settings, start_api=True, postgres_options=FAST_POSTGRES):
        pool = await create_pool(settings)
        try:
            _, admin_key = await create_api_key(pool, "web-ui-admin", "admin")
            _, operator_key = await create_api_key(pool, "web-ui-operator", "operator")
        finally:
            await pool.close()
        yield settings, admin_key, operator_key


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


async def _start(settings: Settings, operator_key: str) -> InternshipPlan:
    plan = planned()
    async with httpx.AsyncClient(base_url=settings.public_base_url, timeout=30) as http:
        started = await http.post(
            "/api/internships",
            json=plan.model_dump(mode="json"),
            headers={"Authorization": f"Bearer {operator_key}"},
        )
    assert started.status_code in (200, 201, 202), started.text
    return plan


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="session")
async def test_an_admin_reads_an_encrypted_history_in_the_web_ui(
    encrypted_stack: tuple[Settings, str, str], browser: Browser
) -> None:
    settings, admin_key, operator_key = encrypted_stack
    plan = await _start(settings, operator_key)
    base = settings.public_base_url
    namespace = settings.temporal_namespace
    workflow = f"{base}/temporal/namespaces/{namespace}/workflows/internship-{plan.internship_id}"

    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = await context.new_page()
        # Not signed in: the Web UI sends the admin to sign in, and back.
        await page.goto(workflow)
        await expect(page).to_have_url(f"{base}/admin/login?next=" + _quoted(workflow, base))
        await page.fill("input[name=key]", admin_key)
        await page.locator("form button[type=submit], form input[type=submit]").first.click()
        await expect(page).to_have_url(workflow)

        # The start input (the plan) is shown decrypted: the intern's and mentor's names.
        await expect(page.get_by_text(plan.intern.name).first).to_be_visible(timeout=30_000)
        content = await page.content()
        assert "binary/encrypted" not in content, "the UI shows ciphertext next to clear text"
        await page.screenshot(path=str(SCREENSHOT), full_page=True)
    finally:
        await context.close()

    # Another browser, never signed in, gets nothing out of the UI's API.
    stranger = await browser.new_context()
    try:
        answer = await stranger.request.get(f"{base}/temporal/api/v1/settings")
        assert answer.status == 401 and "/admin/login" in await answer.text()
    finally:
        await stranger.close()


async def _sign_in(page: Page, base: str, admin_key: str) -> None:
    await page.goto(f"{base}/admin/login")
    await page.fill("input[name=key]", admin_key)
    await page.locator("form button[type=submit], form input[type=submit]").first.click()
    await expect(page).to_have_url(f"{base}/admin")


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="session")
async def test_the_web_ui_offers_and_forwards_no_change_to_an_internship(
    encrypted_stack: tuple[Settings, str, str], browser: Browser
) -> None:
    """Every way the UI has to change a workflow is disabled, the calls it would make are refused
    by the API even when sent as the UI sends them, and the internship is untouched; reading,
    decrypted, still works."""
    settings, admin_key, operator_key = encrypted_stack
    plan = await _start(settings, operator_key)
    base, namespace = settings.public_base_url, settings.temporal_namespace
    workflow_id = f"internship-{plan.internship_id}"
    ui = f"{base}/temporal/namespaces/{namespace}/workflows"
    api = f"{base}/temporal/api/v1/namespaces/{namespace}/workflows/{workflow_id}"

    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = await context.new_page()
        await _sign_in(page, base, admin_key)
        await page.goto(f"{ui}/{workflow_id}")
        # The workflow is shown, decrypted: the page is the workflow's, loaded.
        await expect(page.get_by_text(plan.intern.name).first).to_be_visible(timeout=30_000)
        await expect(page.get_by_text(workflow_id).first).to_be_visible()
        await expect(page.get_by_role("button", name="Request Cancellation")).to_be_disabled()
        await expect(page.get_by_role("button", name="More Actions")).to_be_disabled()
        for test_id in WRITE_BUTTONS:
            buttons = page.get_by_test_id(test_id)
            assert await buttons.count() > 0, f"the UI no longer has {test_id}: look again"
            for index in range(await buttons.count()):
                await expect(buttons.nth(index)).to_be_disabled()
        await page.screenshot(path=str(READ_ONLY_SCREENSHOT), full_page=True)

        # The calls behind those buttons, sent from the UI's page as the UI sends them.
        read = await page.evaluate(UI_FETCH, ["GET", api, None])
        assert read[0] == 200 and workflow_id in read[1], read
        writes = {
            "terminate": ("POST", f"{api}/terminate", {"reason": "from the Web UI"}),
            "cancel": ("POST", f"{api}/cancel", {"reason": "from the Web UI"}),
            "signal": ("POST", f"{api}/signal/company_feedback", {}),
            "update": ("POST", f"{api}/update/approve", {"request": {"input": {}}}),
            "reset": ("POST", f"{api}/reset", {"reason": "from the Web UI"}),
            "start": ("POST", f"{api}-copy", {"workflowType": {"name": "InternshipWorkflow"}}),
            "batch": ("POST", f"{api.split('/workflows/')[0]}/batch-operations/b1", {}),
            "query": ("POST", f"{api}/query/status", {"query": {"queryType": "status"}}),
        }
        for name, (method, url, body) in writes.items():
            status, text = await page.evaluate(UI_FETCH, [method, url, body])
            assert status == 405 and READ_ONLY in text, (name, status, text)
        # A read the UI does not make is not forwarded either (the list is what reading needs).
        status, text = await page.evaluate(
            UI_FETCH, ["GET", f"{api.split('/workflows/')[0]}/workflow-rules", None]
        )
        assert status == 403 and READ_ONLY in text, (status, text)

        # The list offers no way to start one either: its Start Workflow button is gone.
        await page.goto(ui)
        await expect(page.get_by_role("row", name=re.compile(workflow_id))).to_be_visible(
            timeout=30_000
        )
        await expect(page.get_by_role("button", name="Start Workflow")).to_have_count(0)
    finally:
        await context.close()

    client = await Client.connect(settings.temporal_address, namespace=namespace)
    handle = client.get_workflow_handle(workflow_id)
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    kinds = {event.event_type for event in (await handle.fetch_history()).events}
    for written in (
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
    ):
        assert written not in kinds, EventType.Name(written)


#: Calls of the Web UI's own server (not of Temporal's API) that it reads with.
UI_SERVER_READS = {"settings", "namespaces/{}/workflows/{}/run/{}/history.json"}
_FIELD = re.compile(r"\{[^}]*\}")


def _http_rules() -> list[tuple[str, str]]:
    """Every (method, path under api/v1) of Temporal's HTTP API, from its protos' http rules;
    path parameters as `{}`."""
    found = []
    for module in (workflow_service, operator_service):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                rule = method.GetOptions().Extensions[annotations_pb2.http]
                for binding in (rule, *rule.additional_bindings):
                    verb = binding.WhichOneof("pattern")
                    path = getattr(binding, verb) if verb else ""
                    if path.startswith("/api/v1/"):
                        found.append((verb.upper(), _FIELD.sub("{}", path[len("/api/v1/") :])))
    return found


def test_the_passthrough_forwards_reads_only() -> None:
    """Against Temporal's own HTTP API (its protos): every call that is not a GET is refused,
    and every call the passthrough forwards is a GET of the API (or a read of the UI's server)."""
    rules = _http_rules()
    assert len(rules) > 100 and ("POST", "namespaces/{}/workflows/{}/terminate") in rules
    for method, path in rules:
        concrete = f"api/v1/{path.replace('{}', 'x')}"
        if method != "GET":
            assert refusal(method, concrete) == READ_ONLY, (method, path)
    gets = {path for method, path in rules if method == "GET"}
    for read in READS:
        assert read in gets or read in UI_SERVER_READS, f"{read} is no GET of Temporal's API"
        assert refusal("GET", f"api/v1/{read.replace('{}', 'x')}") is None, read
    # Pages and assets of the UI pass as GETs only; a path that climbs is never forwarded.
    assert refusal("GET", "namespaces/internflow/workflows") is None
    assert refusal("POST", "namespaces/internflow/workflows") == READ_ONLY
    assert refusal("GET", "api/v1/settings/../namespaces/x/workflows/y/terminate") is not None


def _quoted(url: str, base: str) -> str:
    """The `next` parameter the sign-in page gets for `url` of this site."""
    return quote(url.removeprefix(base), safe="")


@pytest.mark.asyncio(loop_scope="session")
async def test_a_refused_codec_call_says_what_to_do(
    encrypted_stack: tuple[Settings, str, str],
) -> None:
    settings, admin_key, operator_key = encrypted_stack
    body = {"payloads": [{"metadata": {"encoding": base64.b64encode(b"json/plain").decode()}}]}
    async with httpx.AsyncClient(base_url=settings.public_base_url, timeout=30) as http:
        for headers in (
            {},
            {"Authorization": "Bearer not-a-key"},
            {"Authorization": f"Bearer {operator_key}"},
        ):
            refused = await http.post("/codec/decode", json=body, headers=headers)
            assert refused.status_code in (401, 403), refused.text
            reason = refused.json()["detail"]
            assert "/admin/login" in reason and "--codec-auth" in reason, reason
            assert "not-a-key" not in reason and operator_key not in reason
        fine = await http.post(
            "/codec/decode", json=body, headers={"Authorization": f"Bearer {admin_key}"}
        )
        assert fine.status_code == 200, fine.text


#: What the Temporal CLI prints, and all it prints about it, when the codec refuses its call: it
#: retries the call until its command's deadline, then gives up without the codec's answer.
CLI_REFUSED = "Error: displaying history failed: context deadline exceeded"


@pytest.mark.asyncio(loop_scope="session")
async def test_the_temporal_cli_decrypts_with_an_admin_key_and_says_only_deadline_when_refused(
    encrypted_stack: tuple[Settings, str, str],
) -> None:
    """What docs/operating/production.md says a CLI user sees: with an admin key, the history in
    clear; with any other key, after the command's deadline, one line that names no refusal
    (the Temporal CLI shows no codec answer), while the API's log says why, and the same key sent
    to the codec by hand gets the reason."""
    settings, admin_key, operator_key = encrypted_stack
    plan = await _start(settings, operator_key)

    def show(key: str, *more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                temporal_binary(),
                "workflow",
                "show",
                "--workflow-id",
                f"internship-{plan.internship_id}",
                "--address",
                settings.temporal_address,
                "--namespace",
                settings.temporal_namespace,
                "--codec-endpoint",
                f"{settings.public_base_url}/codec",
                "--codec-auth",
                f"Bearer {key}",
                *more,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")},
        )

    shown = show(admin_key, "--output", "json")
    assert shown.returncode == 0, shown.stderr
    started = json.loads(shown.stdout)["events"][0]["workflowExecutionStartedEventAttributes"]
    (payload,) = started["input"]["payloads"]  # decrypted by the API's codec
    assert base64.b64decode(payload["metadata"]["encoding"]) == b"json/plain"
    assert plan.intern.name in base64.b64decode(payload["data"]).decode()

    log = settings.state_dir / "logs" / "api.log"
    for key, logged in (("not-a-key", "auth.refused"), (operator_key, "auth.forbidden")):
        before = log.read_text().count(logged)
        refused = show(key, "--command-timeout", "3s")
        assert refused.returncode == 1, refused
        assert refused.stderr.strip() == CLI_REFUSED, refused.stderr
        assert "codec" not in refused.stdout + refused.stderr, refused
        assert plan.intern.name not in refused.stdout
        assert log.read_text().count(logged) > before, logged

    # The check the documentation gives instead: the key sent by hand with no payloads.
    async with httpx.AsyncClient(base_url=settings.public_base_url, timeout=30) as http:
        for key, status in ((admin_key, 200), (operator_key, 403), ("not-a-key", 401)):
            answer = await http.post(
                "/codec/decode", json={"payloads": []}, headers={"Authorization": f"Bearer {key}"}
            )
            assert answer.status_code == status, answer.text
            if status == 200:
                assert answer.json() == {"payloads": []}
            else:
                assert "--codec-auth" in answer.json()["detail"], answer.text
