-- Wallet offers by reference (OpenID for Verifiable Credential Issuance 1.0, section 4.1.3): the
-- badge e-mail and the badge's pages show `openid-credential-offer://?credential_offer_uri=...`,
-- a short URL (a small QR code), and the wallet fetches the offer from
-- `GET /oid4vci/offers/<reference>`. One row per offer made, kept under a hash of the random
-- reference in that URL (`offer_id`: the reference itself is never stored, as codes are not in
-- wallet_claims). The offer is served once: serving it sets `served_at` and clears `offer` in the
-- same statement, so that the pre-authorized code it carries does not stay in the database.
-- `expires_at` is the expiry of that code (30 days for the e-mail's offer, 15 minutes for a
-- page's); expired rows are deleted opportunistically, whenever a new offer is stored
-- (mail/wallet_offer.py, store_offer): no job sweeps the table.
CREATE TABLE wallet_offers (
    offer_id        text PRIMARY KEY CHECK (offer_id ~ '^[0-9a-f]{32}$'),
    credential_uuid uuid NOT NULL,
    offer           jsonb,  -- the offer object; NULL once served
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    served_at       timestamptz,
    CHECK (served_at IS NULL OR offer IS NULL),
    CHECK (served_at IS NOT NULL OR offer IS NOT NULL)
);
CREATE INDEX wallet_offers_expiry ON wallet_offers (expires_at);

-- The application stores offers, serves each once (the two columns below) and deletes expired
-- ones; nothing else. Said here as well as by the default privileges, whoever made the table.
REVOKE ALL ON wallet_offers FROM internflow_app;
GRANT SELECT, INSERT, DELETE ON wallet_offers TO internflow_app;
GRANT UPDATE (offer, served_at) ON wallet_offers TO internflow_app;
