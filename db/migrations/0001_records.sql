-- The read model, plan versions, audit trail, notifications and credentials of internflow.

CREATE TABLE internships (
    internship_id  text PRIMARY KEY,
    workflow_id    text NOT NULL,
    institution_id text NOT NULL,
    company_id     text NOT NULL,
    phase          text NOT NULL,
    plan_version   integer NOT NULL,
    start_at       timestamptz NOT NULL,
    end_at         timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX internships_phase ON internships (phase);
CREATE INDEX internships_company ON internships (company_id);
CREATE INDEX internships_institution ON internships (institution_id);

CREATE TABLE plan_versions (
    internship_id text NOT NULL REFERENCES internships,
    version       integer NOT NULL,
    plan          jsonb NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (internship_id, version)
);

-- Append-only: every step of every internship, kept after Temporal's retention drops histories.
CREATE TABLE audit_events (
    seq           bigserial PRIMARY KEY,
    event_id      text NOT NULL UNIQUE,
    internship_id text NOT NULL,
    workflow_id   text NOT NULL,
    run_id        text NOT NULL,
    plan_version  integer NOT NULL,
    actor         text NOT NULL,
    kind          text NOT NULL,
    phase         text NOT NULL,
    occurred_at   timestamptz NOT NULL,
    detail        jsonb NOT NULL DEFAULT '{}',
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_events_internship ON audit_events (internship_id, occurred_at, seq);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP;
END;
$$;
CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- One row per e-mail; the address itself is not stored here (it lives in the plan version).
CREATE TABLE notifications (
    notification_id text PRIMARY KEY,
    internship_id   text NOT NULL,
    kind            text NOT NULL,
    recipient_role  text NOT NULL,
    message_id      text NOT NULL,
    status          text NOT NULL CHECK (status IN ('sending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX notifications_internship ON notifications (internship_id);

CREATE TABLE credentials (
    credential_id text PRIMARY KEY,
    internship_id text NOT NULL UNIQUE,
    format        text NOT NULL,
    credential    jsonb NOT NULL,
    issued_at     timestamptz NOT NULL,
    emailed_at    timestamptz,
    message_id    text NOT NULL
);
