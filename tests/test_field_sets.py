"""Frozen models share their sets of given fields (models/base.py, `StrictModel`): nothing a
worker, the API or a continue-as-new writes changes by a byte, and no shared set ever changes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from models.base import StrictModel
from models.state import InternshipInput, InternshipState, Signature
from models.submissions import Approval, Receipt
from runtime.clients import PYDANTIC

pytestmark = pytest.mark.pure

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "plan.json"
AT = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)


def _input_payload() -> bytes:
    """An agreed internship's continue-as-new input, as its payload: the example plan and a
    state with signatures, receipts and a ladder begun."""
    plan = json.loads(EXAMPLE.read_text())
    state = InternshipState(
        started=True,
        signatures=[
            Signature(
                approval=Approval(submission_id=f"a-{party}", party=party, plan_version=1), at=AT
            )
            for party in ("intern", "tutor", "mentor")
        ],
        receipts={
            f"a-{party}": Receipt(
                submission_id=f"a-{party}", kind="approval", accepted_at=AT, late=False
            )
            for party in ("intern", "tutor", "mentor")
        },
        ladder_done={"check-in": 2},
        shift=timedelta(hours=1),
    )
    start = InternshipInput.model_validate({"plan": plan, "state": state.model_dump()})
    return PYDANTIC.payload_converter.to_payloads([start])[0].SerializeToString()


def _decode(payload: bytes) -> InternshipInput:
    from temporalio.api.common.v1 import Payload

    message = Payload()
    message.ParseFromString(payload)
    decoded = PYDANTIC.payload_converter.from_payloads([message], [InternshipInput])[0]
    assert isinstance(decoded, InternshipInput)
    return decoded


def _models(value: Any) -> Iterator[BaseModel]:
    if isinstance(value, BaseModel):
        yield value
        for field in type(value).model_fields:
            yield from _models(getattr(value, field))
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _models(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _models(item)


def _written(start: InternshipInput) -> list[bytes]:
    """Everything written from a decoded input: its continue-as-new payload, the plan an activity
    saves, and the dumps with and without the fields left unset."""
    again = InternshipInput(
        plan=start.plan, state=start.state.model_copy(update={"runs": start.state.runs + 1})
    )
    converter = PYDANTIC.payload_converter
    return [
        converter.to_payloads([again])[0].SerializeToString(),
        converter.to_payloads([start.plan])[0].SerializeToString(),
        start.model_dump_json().encode(),
        start.model_dump_json(exclude_unset=True).encode(),
        json.dumps(start.model_dump(mode="json", exclude_unset=True)).encode(),
        json.dumps(start.plan.model_dump(mode="json", exclude_defaults=True)).encode(),
    ]


def test_shared_field_sets_change_no_byte_written(monkeypatch: pytest.MonkeyPatch) -> None:
    payload = _input_payload()
    shared = _decode(payload)
    with monkeypatch.context() as own:
        # Pydantic's own behaviour: every model keeps a set of its own.
        own.setattr(StrictModel, "model_post_init", lambda self, context, /: None)
        reference = _decode(payload)
    assert _written(shared) == _written(reference)
    pairs = list(zip(_models(shared), _models(reference), strict=True))
    assert len(pairs) >= 30
    for ours, theirs in pairs:
        assert ours.model_fields_set == theirs.model_fields_set, type(ours).__name__
    # And they are shared: the three signers' approvals, say, keep one set between them.
    approvals = [signature.approval for signature in shared.state.signatures]
    assert len({id(a.__pydantic_fields_set__) for a in approvals}) == 1
    assert len({id(a.__pydantic_fields_set__) for a in reference.state.signatures}) == 3


def test_a_copy_never_changes_the_set_its_original_shares() -> None:
    start = _decode(_input_payload())
    intern, tutor = start.plan.intern, start.plan.tutor
    assert intern.__pydantic_fields_set__ is tutor.__pydantic_fields_set__
    before = set(tutor.model_fields_set)
    plain = Approval(submission_id="a-x", party="intern", plan_version=1)
    other = Approval(submission_id="a-y", party="tutor", plan_version=1)
    assert plain.__pydantic_fields_set__ is other.__pydantic_fields_set__
    commented = plain.model_copy(update={"comment": "Agreed."})
    assert "comment" in commented.model_fields_set
    assert "comment" not in other.model_fields_set
    assert "comment" not in plain.model_fields_set
    renamed = intern.model_copy(update={"name": "Giulia E."})
    assert renamed.model_fields_set == before
    assert tutor.model_fields_set == before
    with pytest.raises(ValueError, match="frozen"):
        intern.name = "changed"  # type: ignore[misc]
    assert tutor.model_fields_set == before
