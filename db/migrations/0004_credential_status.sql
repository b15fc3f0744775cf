-- Revocation and suspension of issued credentials (Bitstring Status Lists) and badge delivery.

-- A published status list. `bits` is the raw bitstring (bit 0 is the most significant bit of
-- byte 0, as the W3C Bitstring Status List counts); badges/status.py encodes and decodes it.
CREATE TABLE status_lists (
    list_id    text PRIMARY KEY,  -- the URL of the status list credential
    purpose    text NOT NULL CHECK (purpose IN ('revocation', 'suspension')),
    size       integer NOT NULL CHECK (size > 0 AND size % 8 = 0),
    bits       bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (octet_length(bits) * 8 = size)
);

-- Where each credential sits on the status lists, and whether it is revoked or suspended.
ALTER TABLE credentials
    ADD COLUMN revocation_list_id text REFERENCES status_lists (list_id),
    ADD COLUMN revocation_index   integer CHECK (revocation_index >= 0),
    ADD COLUMN suspension_list_id text REFERENCES status_lists (list_id),
    ADD COLUMN suspension_index   integer CHECK (suspension_index >= 0),
    ADD COLUMN revoked_at         timestamptz,
    ADD COLUMN suspended_at       timestamptz,
    ADD COLUMN reason             text,  -- why it was revoked or suspended
    ADD COLUMN email_error        text,  -- why the badge e-mail could not be delivered
    ADD CONSTRAINT credentials_revocation_entry
        CHECK ((revocation_list_id IS NULL) = (revocation_index IS NULL)),
    ADD CONSTRAINT credentials_suspension_entry
        CHECK ((suspension_list_id IS NULL) = (suspension_index IS NULL)),
    ADD CONSTRAINT credentials_revocation_unique UNIQUE (revocation_list_id, revocation_index),
    ADD CONSTRAINT credentials_suspension_unique UNIQUE (suspension_list_id, suspension_index);
