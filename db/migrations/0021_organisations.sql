-- Institutions and host companies as records, one name each. A plan names them by id and name;
-- the first start of an id records its name, and a later plan that gives a recorded id another
-- name is refused: the name changes only by an explicit rename, with a reason, kept in
-- `organisation_events` (append-only: who, when, the old and the new name, why).
CREATE TABLE institutions (
    institution_id text PRIMARY KEY,
    name           text NOT NULL CHECK (name <> ''),
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    renamed_at     timestamptz
);

CREATE TABLE companies (
    company_id  text PRIMARY KEY,
    name        text NOT NULL CHECK (name <> ''),
    recorded_at timestamptz NOT NULL DEFAULT now(),
    renamed_at  timestamptz
);

CREATE TABLE organisation_events (
    seq             bigserial PRIMARY KEY,
    organisation    text NOT NULL CHECK (organisation IN ('institution', 'company')),
    organisation_id text NOT NULL,
    event           text NOT NULL CHECK (event IN ('recorded', 'renamed')),
    name            text NOT NULL,
    previous_name   text,
    reason          text,
    actor           text NOT NULL,
    internship_id   text,  -- the internship whose start recorded the name, if one did
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (event <> 'renamed' OR (previous_name IS NOT NULL AND reason IS NOT NULL))
);
CREATE INDEX organisation_events_of ON organisation_events (organisation, organisation_id, seq);
CREATE TRIGGER organisation_events_no_update_delete BEFORE UPDATE OR DELETE ON organisation_events
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER organisation_events_no_truncate BEFORE TRUNCATE ON organisation_events
    FOR EACH STATEMENT EXECUTE FUNCTION append_only();

-- What the internships already hold: each id with the name of its latest-starting internship
-- (the name the school's view of its companies showed until now), or its id when no party row
-- names it. Where earlier internships gave the id other names, the event says which.
CREATE TEMPORARY TABLE named_before ON COMMIT DROP AS
SELECT 'company' AS organisation, i.company_id AS organisation_id,
       coalesce(p.name, i.company_id) AS name, i.internship_id, i.start_at
FROM internships i
LEFT JOIN parties p ON p.internship_id = i.internship_id AND p.role = 'company'
UNION ALL
SELECT 'institution', i.institution_id, coalesce(p.name, i.institution_id), i.internship_id,
       i.start_at
FROM internships i
LEFT JOIN parties p ON p.internship_id = i.internship_id AND p.role = 'operator';

CREATE TEMPORARY TABLE kept ON COMMIT DROP AS
SELECT DISTINCT ON (organisation, organisation_id) organisation, organisation_id, name,
       internship_id
FROM named_before
ORDER BY organisation, organisation_id, start_at DESC, internship_id DESC;

INSERT INTO institutions (institution_id, name)
SELECT organisation_id, name FROM kept WHERE organisation = 'institution';
INSERT INTO companies (company_id, name)
SELECT organisation_id, name FROM kept WHERE organisation = 'company';

INSERT INTO organisation_events (organisation, organisation_id, event, name, reason, actor,
                                 internship_id)
SELECT k.organisation, k.organisation_id, 'recorded', k.name,
       (SELECT 'kept from the latest internship; earlier ones also named it '
               || string_agg(DISTINCT quote_literal(n.name), ', ')
        FROM named_before n
        WHERE n.organisation = k.organisation AND n.organisation_id = k.organisation_id
          AND n.name <> k.name),
       'migration 0021', k.internship_id
FROM kept k
ORDER BY k.organisation, k.organisation_id;

-- The application role: reads and records both tables, changes only a name (and when it was
-- renamed), never an id, and never removes a row; the names' history it reads and appends to
-- (UPDATE, DELETE and TRUNCATE refused by trigger too), as 0013_roles.sql decides for the record.
REVOKE ALL ON institutions, companies, organisation_events FROM internflow_app;
GRANT SELECT, INSERT ON institutions, companies, organisation_events TO internflow_app;
GRANT UPDATE (name, renamed_at) ON institutions, companies TO internflow_app;
GRANT USAGE ON SEQUENCE organisation_events_seq_seq TO internflow_app;
