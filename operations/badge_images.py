"""A school's own badge image, where a plan comes in: checked (badges/artwork.py), kept in the
records under its content's hash, and named so in the plan that runs, so that the image itself
never travels in the workflow's history (decision 0045)."""

from __future__ import annotations

import asyncpg

from badges.artwork import CheckedImage, ImageRefused, checked_image, image_from_data_uri
from models.plan import STORED_IMAGE, InternshipPlan
from operations.internships import PlanRefused
from records.images import keep_image, kept_image


def _checked(image: str) -> CheckedImage:
    try:
        return checked_image(image_from_data_uri(image))
    except ImageRefused as refused:
        raise PlanRefused(f"badge.image {refused}", "badge.image") from None


def rehearsed_plan_image(plan: InternshipPlan) -> InternshipPlan:
    """For a rehearsal, which keeps nothing: a `data:` URI checked as a start checks it, then
    left out of the rehearsed plan (the badge is not drawn there)."""
    image = plan.badge.image
    if image is None or not image.startswith("data:"):
        return plan
    _checked(image)
    return plan.model_copy(update={"badge": plan.badge.model_copy(update={"image": None})})


async def keep_plan_image(
    conn: asyncpg.Connection | asyncpg.Pool, plan: InternshipPlan
) -> InternshipPlan:
    """The plan with its badge image kept: a `data:` URI is checked (PlanRefused naming
    badge.image and what to change, and nothing kept, when it may not be a badge image), kept,
    and replaced by its name `sha256-<hex>.png` (or `.svg`); a kept image's name must be one the
    records hold. Any other plan comes back as it is."""
    image = plan.badge.image
    if image is None:
        return plan
    if image.startswith("data:"):
        checked = _checked(image)
        digest = await keep_image(conn, checked.media_type, checked.content)
        name = f"sha256-{digest}.{checked.extension}"
        return plan.model_copy(update={"badge": plan.badge.model_copy(update={"image": name})})
    found = STORED_IMAGE.match(image)
    if found is not None and await kept_image(conn, found["digest"]) is None:
        raise PlanRefused(
            f"badge.image {image!r} names no image kept here: give the image itself "
            "(a PNG or SVG as a data: URI, or its file to the CLI)",
            "badge.image",
        )
    return plan
