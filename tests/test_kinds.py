"""The registry of submission kinds (models/kinds.py) is complete: every kind it names has what
each layer needs (an update with its validator on the workflow, a way through operations, an API
route, its party page and words where it has a link, its CLI command where it has one, a place
in the records' check of kinds), and every update of the workflow is a kind it names. The check
runs on the classes and files alone, with no running part; a registry with an incomplete entry
is shown to fail it."""

from __future__ import annotations

import re
import tempfile
import typing
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest
import typer
from temporalio import workflow

from api import i18n as words
from api.app import create_app
from api.routers import party_pages
from cli.main import app as cli_app
from embedded.ports import throwaway_settings
from models import kinds
from models.base import StrictModel
from models.kinds import KINDS, SubmissionKind
from models.state import InternshipState
from models.status import Phase
from models.submissions import PlacementEvaluation, SubmissionId
from operations import internships as ops
from runtime.links import PURPOSES, WHO_MAY
from tests.helpers import sample_plan
from workflows import intake
from workflows.clock import PausableClock
from workflows.internship import InternshipWorkflow

pytestmark = pytest.mark.pure

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "api" / "templates"
MIGRATIONS = ROOT / "db" / "migrations"


@cache
def _api_routes() -> frozenset[tuple[str, str]]:
    """(method, path) of every route of the API as it is assembled (its OpenAPI document)."""
    with tempfile.TemporaryDirectory() as state_dir:
        paths = create_app(throwaway_settings(Path(state_dir))).openapi()["paths"]
    return frozenset((method.upper(), path) for path, item in paths.items() for method in item)


@cache
def _cli_commands() -> frozenset[str]:
    return frozenset(typer.main.get_group(cli_app).commands)


@cache
def _recorded_kinds() -> frozenset[str]:
    """The kinds the latest migration lets `submissions` hold (its check of `kind`)."""
    found: list[str] = []
    for migration in sorted(MIGRATIONS.glob("*.sql")):
        for listed in re.findall(r"CHECK \(kind IN \(([^)]*)\)", migration.read_text()):
            found = re.findall(r"'(\w+)'", listed)
    return frozenset(found)


def missing(registry: Iterable[SubmissionKind]) -> list[str]:
    """What each kind of `registry` lacks, one line each (empty: complete)."""
    updates = workflow._Definition.must_from_class(InternshipWorkflow).updates
    problems: list[str] = []
    for kind in registry:
        name = kind.kind
        update = updates.get(kind.update)
        if update is None:
            problems.append(f"{name}: no update {kind.update!r} on InternshipWorkflow")
        else:
            if update.validator is None:
                problems.append(f"{name}: update {kind.update!r} has no validator")
            if list(update.arg_types or ()) != [kind.model]:
                problems.append(
                    f"{name}: update {kind.update!r} takes {update.arg_types}, not "
                    f"{kind.model.__name__}"
                )
        try:
            ops.update_for(kind.model)
        except (KeyError, AttributeError):
            problems.append(f"{name}: operations.internships.send cannot send a {kind.model}")
        path = f"/api/internships/{{internship_id}}/{kind.route}"
        if ("POST", path) not in _api_routes():
            problems.append(f"{name}: no API route POST {path}")
        if name not in _recorded_kinds():
            problems.append(f"{name}: the records' check of submissions.kind does not name it")
        if kind.command is not None and kind.command not in _cli_commands():
            problems.append(f"{name}: no CLI command `internflow {kind.command}`")
        if kind.purpose is not None:
            problems += [f"{name}: {problem}" for problem in _page_missing(kind)]
    return problems


def _page_missing(kind: SubmissionKind) -> list[str]:
    """What a kind sent through a party link lacks: the link, its page, the page's words."""
    purpose = kind.purpose
    assert purpose is not None
    problems = []
    if purpose not in PURPOSES:
        problems.append(f"purpose {purpose!r} is not a Purpose (models/kinds.py)")
    elif not set(kind.actors) <= WHO_MAY[purpose]:
        problems.append(f"a link for {purpose!r} may not be held by {kind.actors}")
    template = party_pages.template_of(purpose)
    if not (TEMPLATES / template).is_file():
        problems.append(f"no party page api/templates/{template}")
    for table in ("CLOSED", "NOT_YET"):
        if purpose not in getattr(words, table):
            problems.append(f"no words for {purpose!r} in api/i18n.py {table}")
    if purpose not in party_pages.CORRECTABLE:
        for table in ("DONE_TITLE", "DONE"):
            if purpose not in getattr(words, table):
                problems.append(f"no words for {purpose!r} in api/i18n.py {table}")
    if kind.kind not in words.RECEIPT:
        problems.append(f"no words for {kind.kind!r} in api/i18n.py RECEIPT")
    return problems


def test_every_registered_kind_has_what_each_layer_needs() -> None:
    assert missing(KINDS) == []


def test_every_update_of_the_workflow_is_a_registered_kind() -> None:
    updates = workflow._Definition.must_from_class(InternshipWorkflow).updates
    assert sorted(updates) == sorted(kind.update for kind in KINDS)


def test_the_registry_names_each_thing_once() -> None:
    for field in ("model", "kind", "update", "route"):
        values = [getattr(kind, field) for kind in KINDS]
        assert len(values) == len(set(values)), field
    commands = [kind.command for kind in KINDS if kind.command is not None]
    assert len(commands) == len(set(commands))
    assert set(PURPOSES) == {kind.purpose for kind in KINDS if kind.purpose is not None}
    assert typing.get_args(kinds.Purpose) == PURPOSES
    for kind in KINDS:
        assert kind.phases, kind.kind
        assert (kind.actor_field is None) == (len(kind.actors) == 1), kind.kind
        if kind.actor_field is not None:
            assert kind.actor_field in kind.model.model_fields, kind.kind


class Survey(StrictModel):
    """A kind of submission nothing but a registry entry was written for."""

    submission_id: SubmissionId
    answer: int


def test_an_incomplete_entry_is_reported_with_each_thing_it_lacks() -> None:
    survey = SubmissionKind(
        Survey,
        "survey",
        update="submit_survey",
        actors=("intern",),
        actor_field=None,
        phases=kinds.AT_THE_END,
        route="surveys",
        purpose="survey",  # type: ignore[arg-type]
        command="survey",
    )
    assert missing([survey]) == [
        "survey: no update 'submit_survey' on InternshipWorkflow",
        f"survey: operations.internships.send cannot send a {Survey}",
        "survey: no API route POST /api/internships/{internship_id}/surveys",
        "survey: the records' check of submissions.kind does not name it",
        "survey: no CLI command `internflow survey`",
        "survey: purpose 'survey' is not a Purpose (models/kinds.py)",
        "survey: no party page api/templates/party_survey.html",
        "survey: no words for 'survey' in api/i18n.py CLOSED",
        "survey: no words for 'survey' in api/i18n.py NOT_YET",
        "survey: no words for 'survey' in api/i18n.py DONE_TITLE",
        "survey: no words for 'survey' in api/i18n.py DONE",
        "survey: no words for 'survey' in api/i18n.py RECEIPT",
    ]


@pytest.mark.parametrize(
    ("changed", "reported"),
    [
        (
            {"update": "submit_placement_evaluation"},
            ["no update 'submit_placement_evaluation' on InternshipWorkflow"],
        ),
        ({"update": "submit_self_assessment"}, ["takes [<class 'models.submissions.SelfAssess"]),
        ({"route": "placement-surveys"}, ["no API route POST"]),
        ({"command": "rate-placement"}, ["no CLI command `internflow rate-placement`"]),
        (
            {"kind": "placement_rating"},
            [
                "the records' check of submissions.kind does not name it",
                "no words for 'placement_rating' in api/i18n.py RECEIPT",
            ],
        ),
        (
            {"actors": ("mentor",)},
            ["a link for 'evaluate_placement' may not be held by ('mentor',)"],
        ),
    ],
)
def test_each_thing_a_registered_kind_lacks_is_reported(
    changed: dict[str, object], reported: list[str]
) -> None:
    entry = replace(kinds.PLACEMENT_EVALUATION, **changed)  # type: ignore[arg-type]
    problems = missing([entry])
    assert len(problems) == len(reported), problems
    for problem, said in zip(problems, reported, strict=True):
        assert said in problem, problems


def test_a_kind_without_an_intake_function_records_every_field_but_its_id() -> None:
    plan = sample_plan(datetime.now(UTC) + timedelta(days=30))
    state = InternshipState(phase=Phase.EVALUATION)
    desk = intake.Desk(plan, state, PausableClock(state, stop=lambda: False), datetime.now(UTC))
    evaluation = PlacementEvaluation(
        submission_id="p-1", tasks_matched=4, mentor_support=5, would_recommend=True
    )
    change = intake.recorded(desk, evaluation)
    assert change.detail == {
        "tasks_matched": 4,
        "mentor_support": 5,
        "would_recommend": True,
        "comments": None,
    }
    change.apply()
    assert state == InternshipState(phase=Phase.EVALUATION)
    # The placement evaluation has its own function: the same row, and it keeps the evaluation.
    entry = intake.entry(desk, evaluation)
    assert (entry.kind, entry.actor, entry.detail) == (
        "placement_evaluation",
        "intern",
        change.detail,
    )
