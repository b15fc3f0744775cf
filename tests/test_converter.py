"""The data converter: the contrib pydantic converter's JSON, with one TypeAdapter cache for the
process (the SDK makes a payload converter per workflow instance)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter

from models.state import InternshipInput, InternshipState
from runtime.clients import PYDANTIC, SharedPydanticPayloadConverter
from tests.helpers import sample_plan

pytestmark = pytest.mark.pure


def test_every_instance_shares_one_type_adapter_cache() -> None:
    first, second = SharedPydanticPayloadConverter(), SharedPydanticPayloadConverter()
    assert first is not second
    assert list(first.converters.values()) == list(second.converters.values())
    json_first = first.converters[b"json/plain"]
    assert json_first is second.converters[b"json/plain"]


def test_the_payloads_are_the_contrib_converters_and_read_back_whole() -> None:
    plan = sample_plan(datetime.now(UTC) + timedelta(days=3))
    start = InternshipInput(plan=plan, state=InternshipState(records=3))
    ours = PYDANTIC.payload_converter.to_payloads([start])
    theirs = pydantic_data_converter.payload_converter.to_payloads([start])
    assert ours == theirs
    # A new instance (as for another workflow) reads what the first wrote.
    back = SharedPydanticPayloadConverter().from_payloads(ours, [InternshipInput])
    assert back == [start]
