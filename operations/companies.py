"""The school's view of its host companies, from the records: per company, the internships it
hosted by phase (the final phases are the outcomes), the completion rate, the missed milestones,
the interns' evaluation of the placement (as figures only, and only once enough interns rated
that none of them can be recognised) and its internships.

Every figure is over the internships a caller may see: an institution's operator key sees its
own institutions' internships only (`institution_ids`), so its figures are its own."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Final

import asyncpg
from pydantic import BaseModel

from models.status import Phase
from operations.organisations import NameEvent, name_history

#: Placement figures are shown only from this many interns' evaluations: with fewer, a company
#: (or anyone) could tell what one intern answered.
MIN_RATINGS: Final = 3

#: The phases in which a placement has ended after it took place: the completion rate's
#: denominator (a cancelled internship never started: its agreement was not approved).
ENDED: Final = (Phase.COMPLETED, Phase.NOT_CERTIFIED, Phase.WITHDRAWN)


class PlacementFigures(BaseModel):
    """The interns' evaluation of the placement, over `ratings` interns (at least MIN_RATINGS)."""

    ratings: int
    rating: float
    """The mean of the two scales below, 1 to 5."""
    tasks_matched: float
    """How far the tasks matched the learning agreement, mean, 1 (not at all) to 5 (fully)."""
    mentor_support: float
    """The mentor's support, mean, 1 to 5."""
    would_recommend: float
    """The share of interns who would recommend the placement, 0 to 1."""


class CompanyInternship(BaseModel):
    internship_id: str
    institution_id: str
    phase: Phase
    start_at: datetime
    end_at: datetime
    overdue: bool
    missed_milestones: int


class CompanySummary(BaseModel):
    company_id: str
    name: str
    """The company's recorded name (see operations/organisations.py): one per company, changed
    only by a rename. (A company hosting only internships started by a library caller that
    records no names shows its latest internship's name, else its id.)"""
    internships: int
    by_phase: dict[Phase, int]
    """Internships per phase: the final phases (completed, not_certified, withdrawn, cancelled)
    are the outcomes."""
    completion_rate: float | None
    """Completed among those that ended after taking place (completed, not certified,
    withdrawn); None while none has."""
    missed_milestones: int
    ratings: int
    """How many interns evaluated the placement."""
    placement: PlacementFigures | None
    """None while fewer than MIN_RATINGS interns rated."""


class CompanyDetail(CompanySummary):
    internship_list: list[CompanyInternship]
    name_history: list[NameEvent]
    """How the company's name was recorded and every rename since (who, when, why)."""


_SUMMARY = """
WITH visible AS (
    SELECT i.internship_id, i.institution_id, i.company_id, i.phase, i.start_at, i.end_at,
           i.overdue
    FROM internships i
    WHERE ($1::text[] IS NULL OR i.institution_id = ANY($1::text[]))
      AND ($2::text IS NULL OR i.company_id = $2)
),
missed AS (
    SELECT a.internship_id, count(*) AS missed
    FROM audit_events a JOIN visible v USING (internship_id)
    WHERE a.kind = 'milestone_missed'
    GROUP BY a.internship_id
),
rated AS (
    SELECT s.internship_id,
           (s.payload->>'tasks_matched')::numeric AS tasks_matched,
           (s.payload->>'mentor_support')::numeric AS mentor_support,
           (s.payload->>'would_recommend')::boolean AS would_recommend
    FROM submissions s JOIN visible v USING (internship_id)
    WHERE s.kind = 'placement_evaluation'
)
SELECT v.company_id,
       coalesce((SELECT c.name FROM companies c WHERE c.company_id = v.company_id),
                (SELECT p.name FROM parties p JOIN visible w USING (internship_id)
                 WHERE p.role = 'company' AND w.company_id = v.company_id
                 ORDER BY w.start_at DESC LIMIT 1), v.company_id) AS name,
       count(*) AS internships,
       per_company.by_phase,
       coalesce(sum(m.missed), 0) AS missed_milestones,
       (SELECT count(*) FROM rated r JOIN visible w USING (internship_id)
        WHERE w.company_id = v.company_id) AS ratings,
       (SELECT avg(r.tasks_matched) FROM rated r JOIN visible w USING (internship_id)
        WHERE w.company_id = v.company_id) AS tasks_matched,
       (SELECT avg(r.mentor_support) FROM rated r JOIN visible w USING (internship_id)
        WHERE w.company_id = v.company_id) AS mentor_support,
       (SELECT avg(CASE WHEN r.would_recommend THEN 1.0 ELSE 0.0 END)
        FROM rated r JOIN visible w USING (internship_id)
        WHERE w.company_id = v.company_id) AS would_recommend
FROM visible v
LEFT JOIN missed m USING (internship_id)
CROSS JOIN LATERAL (
    SELECT jsonb_object_agg(phase, n) AS by_phase
    FROM (SELECT phase, count(*) AS n FROM visible x WHERE x.company_id = v.company_id
          GROUP BY phase) per_phase
) per_company
GROUP BY v.company_id, per_company.by_phase
ORDER BY v.company_id
"""


def _summary(row: asyncpg.Record) -> CompanySummary:
    by_phase = {Phase(phase): int(n) for phase, n in json.loads(row["by_phase"]).items()}
    ended = sum(by_phase.get(phase, 0) for phase in ENDED)
    ratings = int(row["ratings"])
    placement = None
    if ratings >= MIN_RATINGS:
        tasks, support = float(row["tasks_matched"]), float(row["mentor_support"])
        placement = PlacementFigures(
            ratings=ratings,
            rating=round((tasks + support) / 2, 2),
            tasks_matched=round(tasks, 2),
            mentor_support=round(support, 2),
            would_recommend=round(float(row["would_recommend"]), 4),
        )
    return CompanySummary(
        company_id=row["company_id"],
        name=row["name"],
        internships=int(row["internships"]),
        by_phase=by_phase,
        completion_rate=by_phase.get(Phase.COMPLETED, 0) / ended if ended else None,
        missed_milestones=int(row["missed_milestones"]),
        ratings=ratings,
        placement=placement,
    )


async def companies(
    conn: asyncpg.Connection | asyncpg.Pool, institution_ids: Sequence[str] | None = None
) -> list[CompanySummary]:
    """Every company that hosted an internship the caller sees, by id."""
    rows = await conn.fetch(
        _SUMMARY, list(institution_ids) if institution_ids is not None else None, None
    )
    return [_summary(row) for row in rows]


async def company(
    conn: asyncpg.Connection | asyncpg.Pool,
    company_id: str,
    institution_ids: Sequence[str] | None = None,
) -> CompanyDetail | None:
    """One company's figures and its internships (latest start first), or None when it hosted
    none the caller sees."""
    scope = list(institution_ids) if institution_ids is not None else None
    row = await conn.fetchrow(_SUMMARY, scope, company_id)
    if row is None:
        return None
    items = await conn.fetch(
        """
        SELECT i.internship_id, i.institution_id, i.phase, i.start_at, i.end_at, i.overdue,
               (SELECT count(*) FROM audit_events a
                WHERE a.internship_id = i.internship_id AND a.kind = 'milestone_missed')
                   AS missed_milestones
        FROM internships i
        WHERE i.company_id = $1 AND ($2::text[] IS NULL OR i.institution_id = ANY($2::text[]))
        ORDER BY i.start_at DESC, i.internship_id
        """,
        company_id,
        scope,
    )
    return CompanyDetail(
        **_summary(row).model_dump(),
        internship_list=[
            CompanyInternship(
                internship_id=item["internship_id"],
                institution_id=item["institution_id"],
                phase=Phase(item["phase"]),
                start_at=item["start_at"],
                end_at=item["end_at"],
                overdue=item["overdue"],
                missed_milestones=int(item["missed_milestones"]),
            )
            for item in items
        ],
        name_history=await name_history(conn, "company", company_id),
    )
