"""The e-mail providers' table and the derived ids' owners (pure: no server needed)."""

from __future__ import annotations

from typing import get_args

import pytest

from mail.providers import (
    BADGE,
    PLAIN,
    PROVIDERS,
    STATUS_NOTICE,
    provider_for,
)
from models.activities import NotificationKind
from models.ids import (
    badge_mail_id,
    credential_id_for,
    credential_id_from_uuid,
    credential_uuid_for,
    credential_uuid_from_id,
    notification_id,
    notification_key,
    workflow_id_for,
)

pytestmark = pytest.mark.pure


def test_every_kind_has_its_provider() -> None:
    assert set(PROVIDERS) == set(get_args(NotificationKind))
    assert provider_for("badge") is BADGE
    assert {provider_for(k) for k in ("revocation", "suspension", "reinstatement")} == {
        STATUS_NOTICE
    }
    # A ladder step is a plain e-mail: the workflow records the overdue flag it may change.
    assert {provider_for(k) for k in ("reminder", "escalation", "missed")} == {PLAIN}
    assert provider_for("approval_request") is PLAIN


def test_the_credential_id_and_its_uuid_are_one_derivation() -> None:
    credential_id = credential_id_for("t-1")
    assert credential_id.startswith("urn:uuid:")
    assert credential_uuid_for("t-1") == credential_uuid_from_id(credential_id)
    assert credential_id_from_uuid(credential_uuid_for("t-1")) == credential_id
    assert credential_uuid_from_id(credential_uuid_for("t-1")) == credential_uuid_for("t-1")


def test_a_notification_key_is_read_back_from_its_id() -> None:
    workflow_id = workflow_id_for("t-1")
    assert notification_key(notification_id(workflow_id, "reminder", "mid-term", "intern")) == (
        "mid-term"
    )
    assert notification_key(badge_mail_id(workflow_id)) == ""
