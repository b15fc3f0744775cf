"""Payload encryption: the codec (rotation, unknown keys), a whole internship whose history holds no
personal data in clear, and the codec endpoint the Temporal Web UI calls."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI, Header, HTTPException
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.codec import codec_router
from models.status import Phase
from models.submissions import Validation
from operations import internships as ops
from runtime.clients import data_converter
from runtime.codec import (
    ENCODING,
    KEY_ID_METADATA,
    CodecConfigError,
    CodecError,
    EncryptionCodec,
    UnknownKeyError,
    codec_from_settings,
    new_key,
)
from runtime.settings import Settings
from tests.helpers import (
    advance_to,
    approve_all,
    assess,
    clock_held,
    report_and_feedback,
    running_worker,
    sample_plan,
    wait_for_phase,
)

K1, K2 = base64.b64decode(new_key()), base64.b64decode(new_key())
ADMIN_TOKEN = "admin-token-for-tests"
UI_ORIGIN = "http://localhost:8080"


def payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text).encode())


def keys_json(**keys: bytes) -> str:
    return json.dumps({key_id: base64.b64encode(key).decode() for key_id, key in keys.items()})


async def test_round_trip_and_rotation_decrypt_with_any_known_key() -> None:
    old = EncryptionCodec({"k1": K1}, "k1")
    rotated = EncryptionCodec({"k1": K1, "k2": K2}, "k2")
    originals = [payload("giulia.esposito@students.example.org"), payload("Anna Schmid")]

    sealed_by_k1 = await old.encode(originals)
    assert [p.metadata["encoding"] for p in sealed_by_k1] == [ENCODING, ENCODING]
    assert [p.metadata[KEY_ID_METADATA] for p in sealed_by_k1] == [b"k1", b"k1"]
    assert all(b"giulia" not in p.data and b"Schmid" not in p.data for p in sealed_by_k1)
    # A random nonce per payload: the same plaintext never gives the same ciphertext.
    again = await old.encode(originals)
    assert [p.data for p in again] != [p.data for p in sealed_by_k1]

    # After rotation, new payloads are sealed with k2 and the old ones still open.
    assert await rotated.decode(sealed_by_k1) == originals
    sealed_by_k2 = await rotated.encode(originals)
    assert {p.metadata[KEY_ID_METADATA] for p in sealed_by_k2} == {b"k2"}
    assert await rotated.decode(sealed_by_k2) == originals
    # Payloads that were never encrypted (before encryption was turned on) pass through.
    assert await rotated.decode(originals) == originals


async def test_unknown_key_and_altered_payloads_are_refused_with_a_clear_error() -> None:
    sealed = await EncryptionCodec({"k1": K1}, "k1").encode([payload("x")])
    with pytest.raises(UnknownKeyError, match=r"codec key 'k1', which is not configured .*k2"):
        await EncryptionCodec({"k2": K2}, "k2").decode(sealed)
    # The same id with another key (a key replaced instead of rotated) does not decrypt either.
    with pytest.raises(CodecError, match="does not decrypt"):
        await EncryptionCodec({"k1": K2}, "k1").decode(sealed)
    # Neither does a payload whose key id was changed (the id is authenticated data).
    relabelled = Payload()
    relabelled.CopyFrom(sealed[0])
    relabelled.metadata[KEY_ID_METADATA] = b"k2"
    with pytest.raises(CodecError, match="does not decrypt"):
        await EncryptionCodec({"k1": K1, "k2": K1}, "k1").decode([relabelled])


def test_codec_settings_off_by_default_and_errors_name_the_setting(tmp_path: Path) -> None:
    assert codec_from_settings(Settings()) is None
    assert codec_from_settings(Settings(codec_keys="", codec_key_id="")) is None
    one = codec_from_settings(Settings(codec_keys=keys_json(a=K1)))
    assert one is not None and one.current_key_id == "a"

    keys_file = tmp_path / "codec-keys.json"
    keys_file.write_text(keys_json(a=K1, b=K2))
    two = codec_from_settings(Settings(codec_keys_file=keys_file, codec_key_id="b"))
    assert two is not None and two.current_key_id == "b" and two.key_ids == ["a", "b"]

    problems = {
        "INTERNFLOW_CODEC_KEY_ID": Settings(codec_keys_file=keys_file),
        "not among": Settings(codec_keys=keys_json(a=K1), codec_key_id="z"),
        "not base64": Settings(codec_keys='{"a": "%%%"}'),
        "must be 32": Settings(codec_keys=json.dumps({"a": base64.b64encode(b"short").decode()})),
        "not JSON": Settings(codec_keys="a=1"),
        "not both": Settings(codec_keys=keys_json(a=K1), codec_keys_file=keys_file),
        "cannot read": Settings(codec_keys_file=tmp_path / "missing.json"),
    }
    for expected, settings in problems.items():
        with pytest.raises(CodecConfigError, match=expected):
            codec_from_settings(settings)


def payload_bytes(event: Any) -> bytes:
    """Everything the server stored for one history event, as raw protobuf bytes."""
    return bytes(event.SerializeToString())


async def test_a_whole_internship_leaves_no_personal_data_in_clear_in_temporal(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    env = time_skipping_env
    encrypted = Settings.model_validate(
        {**settings.model_dump(), "codec_keys": keys_json(k1=K1), "codec_key_id": "k1"}
    )
    # The environment's connection, with the data converter production uses when keys are set.
    client = Client(
        env.client.service_client,
        namespace=env.client.namespace,
        data_converter=data_converter(encrypted),
    )
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=30))
    async with running_worker(client, encrypted, pool):
        with clock_held(env):
            handle = await ops.start_internship(client, encrypted, plan)
        await approve_all(client, plan)
        await wait_for_phase(client, plan.internship_id, Phase.AWAITING_START)
        for milestone in plan.milestones:
            await advance_to(env, handle, milestone.due - timedelta(hours=1))
            await report_and_feedback(client, plan, milestone.id)
        await advance_to(env, handle, plan.period.end + timedelta(hours=1))
        await assess(client, plan, mentor="excellent", tutor="good")
        await ops.validate(
            client, plan.internship_id, Validation(submission_id="v-1", decision="pass")
        )
        outcome = await handle.result()
    assert outcome.phase == Phase.COMPLETED and outcome.credential_id is not None

    # Read what the server stored with a client that has no codec (what an admin without the
    # keys, a database dump or a backup would see).
    plain = Client(
        env.client.service_client,
        namespace=env.client.namespace,
        data_converter=pydantic_data_converter,
    )
    personal = [
        value.encode()
        for party in (plan.intern, plan.tutor, plan.mentor)
        for value in (party.email, party.name)
    ] + [plan.company.contact_email.encode()]
    events = 0
    encrypted_payloads = 0
    run_id: str | None = handle.first_execution_run_id
    while run_id is not None:
        history = await plain.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        next_run_id = None
        for event in history.events:
            events += 1
            stored = payload_bytes(event)
            leaked = [value.decode() for value in personal if value in stored]
            assert not leaked, f"event {event.event_id} ({event.event_type}) holds {leaked}"
            encrypted_payloads += stored.count(ENCODING)
            attributes = event.workflow_execution_continued_as_new_event_attributes
            if attributes.new_execution_run_id:
                next_run_id = attributes.new_execution_run_id
        run_id = next_run_id
    assert events > 50 and encrypted_payloads > 20
    # With the keys, the same history opens: the plan (and the intern's address) is in there.
    started = (await client.get_workflow_handle(handle.id).fetch_history()).events[0]
    sealed_input = started.workflow_execution_started_event_attributes.input.payloads
    assert all(p.metadata["encoding"] == ENCODING for p in sealed_input)
    opened = await client.data_converter.decode(sealed_input)
    assert plan.intern.email in json.dumps(opened, default=str)


def bearer_admin(authorization: Annotated[str | None, Header()] = None) -> None:
    """A simple real check for the router: one admin token."""
    if authorization != f"Bearer {ADMIN_TOKEN}":
        raise HTTPException(401, "send the admin key", headers={"WWW-Authenticate": "Bearer"})


@pytest.fixture
async def codec_api() -> AsyncIterator[tuple[httpx.AsyncClient, EncryptionCodec]]:
    settings = Settings(
        codec_keys=keys_json(k1=K1, k2=K2),
        codec_key_id="k2",
        codec_cors_origins=f"{UI_ORIGIN}, http://127.0.0.1:8080",
    )
    codec = codec_from_settings(settings)
    assert codec is not None
    app = FastAPI()
    app.include_router(codec_router(settings, authorize=bearer_admin))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        yield http, codec


def as_json(payloads: list[Payload]) -> dict[str, Any]:
    """The remote codec protocol's body: protobuf JSON, bytes in base64."""
    return {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                "data": base64.b64encode(p.data).decode(),
            }
            for p in payloads
        ]
    }


def from_json(body: dict[str, Any]) -> list[Payload]:
    return [
        Payload(
            metadata={k: base64.b64decode(v) for k, v in p.get("metadata", {}).items()},
            data=base64.b64decode(p.get("data", "")),
        )
        for p in body["payloads"]
    ]


UI_HEADERS = {"Origin": UI_ORIGIN, "X-Namespace": "internflow"}
ADMIN = {**UI_HEADERS, "Authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_codec_endpoint_refuses_callers_without_the_admin_key(
    codec_api: tuple[httpx.AsyncClient, EncryptionCodec],
) -> None:
    http, codec = codec_api
    sealed = as_json(await codec.encode([payload("giulia.esposito@students.example.org")]))
    for headers in (UI_HEADERS, {**UI_HEADERS, "Authorization": "Bearer wrong"}):
        refused = await http.post("/codec/decode", json=sealed, headers=headers)
        assert refused.status_code == 401
        assert "giulia" not in refused.text
        # The UI can read the refusal: CORS headers are on error answers too.
        assert refused.headers["access-control-allow-origin"] == UI_ORIGIN
    assert (await http.post("/codec/encode", json=sealed, headers=UI_HEADERS)).status_code == 401


async def test_codec_endpoint_decodes_what_the_codec_encoded_and_encodes_for_it(
    codec_api: tuple[httpx.AsyncClient, EncryptionCodec],
) -> None:
    http, codec = codec_api
    originals = [payload("giulia.esposito@students.example.org"), payload("Anna Schmid")]
    old = await EncryptionCodec({"k1": K1}, "k1").encode(originals[:1])
    sealed = await codec.encode(originals[1:])

    decoded = await http.post("/codec/decode", json=as_json(old + sealed), headers=ADMIN)
    assert decoded.status_code == 200, decoded.text
    assert from_json(decoded.json()) == originals
    assert decoded.headers["access-control-allow-origin"] == UI_ORIGIN
    assert decoded.headers["access-control-allow-credentials"] == "true"

    encoded = await http.post("/codec/encode", json=as_json(originals), headers=ADMIN)
    assert encoded.status_code == 200
    assert {p.metadata[KEY_ID_METADATA] for p in from_json(encoded.json())} == {b"k2"}
    assert await codec.decode(from_json(encoded.json())) == originals

    empty = await http.post("/codec/decode", json={"payloads": []}, headers=ADMIN)
    assert empty.json() == {"payloads": []}


async def test_codec_endpoint_answers_preflight_and_explains_bad_requests(
    codec_api: tuple[httpx.AsyncClient, EncryptionCodec],
) -> None:
    http, _ = codec_api
    preflight = await http.options(
        "/codec/decode",
        headers={
            "Origin": UI_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == UI_ORIGIN
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type", "x-namespace"} <= {
        h.strip() for h in allowed.split(",")
    }
    stranger = await http.options(
        "/codec/decode",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in stranger.headers

    other_namespace = await http.post(
        "/codec/decode", json={"payloads": []}, headers={**ADMIN, "X-Namespace": "billing"}
    )
    assert other_namespace.status_code == 403 and "internflow" in other_namespace.text
    garbage = await http.post("/codec/decode", content=b"not json", headers=ADMIN)
    assert garbage.status_code == 400 and "payloads" in garbage.text
    stranger_key = await EncryptionCodec({"k9": K1}, "k9").encode([payload("x")])
    unknown = await http.post("/codec/decode", json=as_json(stranger_key), headers=ADMIN)
    assert unknown.status_code == 400 and "'k9'" in unknown.text
