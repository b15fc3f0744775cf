-- Wallet claims (OpenID for Verifiable Credential Issuance 1.0, pre-authorized code flow): every
-- step of a claim of an issued badge into a wallet, append-only. A pre-authorized code is
-- redeemed once (`code_redeemed`, unique per code); each redemption issues at most one credential
-- (`credential_issued`, unique per code and per c_nonce), bound to the holder's DID and recorded
-- against the badge it was claimed from (`credential_id`); refused redemptions and proofs are
-- rows too (`code_refused`, `proof_refused`), with the reason. Codes, nonces and tokens are never
-- stored: `code_id` and `nonce_id` are hashes of them.
CREATE TABLE wallet_claims (
    seq                   bigserial PRIMARY KEY,
    credential_id         text NOT NULL REFERENCES credentials (credential_id),
    event                 text NOT NULL CHECK (event IN ('code_redeemed', 'code_refused',
                                                         'credential_issued', 'proof_refused')),
    code_id               text,
    nonce_id              text,
    holder                text,  -- the holder's DID (did:key or did:jwk)
    claimed_credential_id text UNIQUE,
    credential            jsonb,  -- the credential issued to the wallet
    reason                text,
    occurred_at           timestamptz NOT NULL DEFAULT now(),
    CHECK ((event = 'credential_issued') = (claimed_credential_id IS NOT NULL)),
    CHECK (event <> 'credential_issued' OR (credential IS NOT NULL AND holder IS NOT NULL))
);
CREATE INDEX wallet_claims_credential ON wallet_claims (credential_id, seq);
CREATE UNIQUE INDEX wallet_claims_code_redeemed_once
    ON wallet_claims (code_id) WHERE event = 'code_redeemed';
CREATE UNIQUE INDEX wallet_claims_one_credential_per_code
    ON wallet_claims (code_id) WHERE event = 'credential_issued';
CREATE UNIQUE INDEX wallet_claims_nonce_once
    ON wallet_claims (nonce_id) WHERE event = 'credential_issued';

-- The application role reads and appends, nothing more (as 0013_roles.sql decides for the
-- record); said here as well as by the default privileges, so it holds whoever made the table.
REVOKE ALL ON wallet_claims FROM internflow_app;
GRANT SELECT, INSERT ON wallet_claims TO internflow_app;
GRANT USAGE ON SEQUENCE wallet_claims_seq_seq TO internflow_app;
