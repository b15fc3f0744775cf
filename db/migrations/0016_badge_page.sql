-- The intern's choices about their badge's public page (/badges/<credential uuid>): whether it
-- shows their name (by default it does not: the badge carries only a salted hash of their
-- address) and whether the page is up at all. Each choice is a row, never changed or removed:
-- the latest choice of each pair is in force, and the rows are the record of who chose what and
-- when. Made through the intern's signed link in the badge e-mail.
CREATE TABLE badge_page_choices (
    seq           bigserial PRIMARY KEY,
    credential_id text NOT NULL REFERENCES credentials (credential_id),
    choice        text NOT NULL CHECK (choice IN ('show_name', 'hide_name', 'take_down', 'publish')),
    chosen_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX badge_page_choices_credential ON badge_page_choices (credential_id, seq);

-- The application role reads and appends, nothing more (as 0013_roles.sql decides for the
-- record); said here as well as by the default privileges, so it holds whoever made the table.
REVOKE ALL ON badge_page_choices FROM internflow_app;
GRANT SELECT, INSERT ON badge_page_choices TO internflow_app;
GRANT USAGE ON SEQUENCE badge_page_choices_seq_seq TO internflow_app;
