"""What the badge e-mail carries: the stored credential baked into the badge image, and as a file
for wallets."""

from __future__ import annotations

import json
from email.message import EmailMessage
from importlib import resources

from temporalio.exceptions import ApplicationError

from badges.bake import bake_png
from models.plan import InternshipPlan


def badge_image(name: str) -> bytes:
    image = resources.files("badges") / "images" / name
    if not image.is_file():
        raise ApplicationError(
            f"badge image {name!r} is not among the shipped images: fix badge.image in the plan",
            type="BadImage",
            non_retryable=True,
        )
    return image.read_bytes()


def attach_badge(message: EmailMessage, plan: InternshipPlan, stored: str) -> None:
    """Attach the stored credential (`credentials.credential`: a JSON document, or a VC-JWT as a
    JSON string) baked into the plan's badge image, and as a file for wallets."""
    value = json.loads(stored)
    if isinstance(value, str):  # a VC-JWT: the image and the file carry the compact JWT
        baked = bake_png(badge_image(plan.badge.image), value)
        attachment, subtype, filename = value.encode(), "jwt", "credential.jwt"
    else:
        baked = bake_png(badge_image(plan.badge.image), stored)
        attachment, subtype, filename = stored.encode(), "json", "credential.json"
    message.add_attachment(baked, maintype="image", subtype="png", filename="badge.png")
    message.add_attachment(attachment, maintype="application", subtype=subtype, filename=filename)
