-- Who takes part in each internship, every accepted submission, and the overdue flag.

-- The people (and the company and operator) of an internship, as the latest saved plan names them.
-- Name and e-mail are personal data: they are needed to write to people, and are never logged.
CREATE TABLE parties (
    internship_id text NOT NULL REFERENCES internships,
    role          text NOT NULL CHECK (role IN ('intern', 'tutor', 'mentor', 'company', 'operator')),
    party_id      text NOT NULL,
    name          text NOT NULL,
    email         text NOT NULL,
    language      text NOT NULL CHECK (language IN ('en', 'it')),
    plan_version  integer NOT NULL,
    PRIMARY KEY (internship_id, role)
);
CREATE INDEX parties_party ON parties (party_id);

-- One row per accepted submission, written with its audit event in the same transaction.
CREATE TABLE submissions (
    internship_id text NOT NULL REFERENCES internships,
    submission_id text NOT NULL,
    kind          text NOT NULL CHECK (kind IN (
                      'approval', 'change_request', 'milestone_report', 'company_feedback',
                      'assessment', 'validation', 'amendment', 'pause', 'resume', 'extension',
                      'withdrawal')),
    actor         text NOT NULL,
    plan_version  integer NOT NULL,
    milestone_id  text,
    late          boolean NOT NULL DEFAULT false,
    payload       jsonb NOT NULL DEFAULT '{}',
    accepted_at   timestamptz NOT NULL,
    event_id      text NOT NULL UNIQUE REFERENCES audit_events (event_id),
    PRIMARY KEY (internship_id, submission_id)
);
CREATE INDEX submissions_milestone ON submissions (internship_id, milestone_id)
    WHERE milestone_id IS NOT NULL;

-- Submissions are part of the record: like the audit trail, they are never changed or removed.
CREATE FUNCTION append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP;
END;
$$;
CREATE TRIGGER submissions_no_update_delete BEFORE UPDATE OR DELETE ON submissions
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER submissions_no_truncate BEFORE TRUNCATE ON submissions
    FOR EACH STATEMENT EXECUTE FUNCTION append_only();

-- Whether a milestone is past its reminder with something still owed (recomputed on each record).
ALTER TABLE internships ADD COLUMN overdue boolean NOT NULL DEFAULT false;
CREATE INDEX internships_overdue ON internships (internship_id) WHERE overdue;
