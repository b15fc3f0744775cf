-- An institution's legal identifier: the organisation identifier its eIDAS electronic seal
-- certificate carries (ETSI EN 319 412-1, e.g. VATIT-01234567890: a VAT number, NTR a national
-- trade register, PSD a payment service provider, then the country and the number). A European
-- Digital Credential names its issuer by it (`eidasLegalIdentifier`), so an institution without
-- one cannot issue them. Setting it is kept in `organisation_events` with who and when (and,
-- when it replaces another, why), as a rename is.
ALTER TABLE institutions
    ADD COLUMN legal_identifier text
        CHECK (legal_identifier ~ '^(VAT|NTR|PSD)[A-Z]{2}-[A-Za-z0-9][A-Za-z0-9./:+-]{0,62}$');

ALTER TABLE organisation_events ADD COLUMN legal_identifier text;
ALTER TABLE organisation_events DROP CONSTRAINT organisation_events_event_check;
ALTER TABLE organisation_events ADD CONSTRAINT organisation_events_event_check
    CHECK (event IN ('recorded', 'renamed', 'identified'));
ALTER TABLE organisation_events ADD CONSTRAINT organisation_events_identified_check
    CHECK (event <> 'identified' OR legal_identifier IS NOT NULL);

-- The application role: as 0021_organisations.sql decided, plus the one column it sets (an id
-- and a name it changes as before). The events stay append-only (trigger and grants).
REVOKE ALL ON institutions FROM internflow_app;
GRANT SELECT, INSERT ON institutions TO internflow_app;
GRANT UPDATE (name, renamed_at, legal_identifier) ON institutions TO internflow_app;
