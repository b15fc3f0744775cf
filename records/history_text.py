"""What people wrote, readable: a timeline row's detail as labelled fields ("comment: ...",
"ratings: lo-web = good, lo-team = excellent", "hours: 32"), the same for the CLI, the admin API
and the admin dashboard. Texts are kept whole, line breaks included; nothing is shortened."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from models.records import DetailField

#: Known detail keys, in the order they are shown, with their labels. Keys not listed here (a
#: newer workflow may record more) follow in the order of the detail, labelled by their name.
LABELS: dict[str, str] = {
    "milestone_id": "milestone",
    "decision": "decision",
    "new_end": "new end",
    "ratings": "ratings",
    "levels": "levels",
    "attendance_hours": "hours",
    "tasks_matched": "tasks matched the agreement (1-5)",
    "mentor_support": "mentor's support (1-5)",
    "would_recommend": "would recommend",
    "summary": "summary",
    "share_in_badge": "shared in badge",
    "comment": "comment",
    "comments": "comments",
    "sections": "sections changed",
    "concerns": "to approve again",
    "reason": "reason",
    "owing": "still owed by",
    "credential_id": "badge",
    "error": "error",
    "plan_version": "plan version",
    "late": "late",
}

#: Flags worth a line only when set (a submission on time is the usual case).
_ONLY_WHEN_TRUE = frozenset({"late"})


def detail_fields(detail: Mapping[str, Any]) -> list[DetailField]:
    """The detail of one audit event as labelled fields, known keys first in a fixed order.
    Empty values (None, "", [], {}) are left out; texts are returned exactly as written."""
    keys = [key for key in LABELS if key in detail]
    keys += [key for key in detail if key not in LABELS]
    fields = []
    for key in keys:
        value = detail[key]
        if value is None or value == "" or value == [] or value == {}:
            continue
        if key in _ONLY_WHEN_TRUE and value is not True:
            continue
        fields.append(DetailField(label=LABELS.get(key, key.replace("_", " ")), value=_text(value)))
    return fields


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Mapping):
        return ", ".join(f"{key} = {_text(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_text(item) for item in value)
    return str(value)
