-- The intern's notice of each change to a badge's status (revocation, suspension,
-- reinstatement), recorded in the change's own transaction: after the commit its workflow
-- (`notice-<credential uuid>-<n>`, the notice_id) is started and `started_at` set. A notice whose
-- start did not happen (Temporal unreachable at the change, the process stopped between the
-- commit and the start) is started by the workers' sweep (operations/notices.py); starting it
-- twice starts nothing new. No personal data here: the notice is built from the records (the
-- change's audit event, the plan) when it is started.
CREATE TABLE status_notices (
    notice_id     text PRIMARY KEY,
    event_id      text NOT NULL UNIQUE,  -- the change's audit event (written with it)
    internship_id text NOT NULL,
    credential_id text NOT NULL,
    change        integer NOT NULL CHECK (change >= 1),
    kind          text NOT NULL
                  CHECK (kind = ANY (ARRAY['revocation', 'suspension', 'reinstatement'])),
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz
);
CREATE INDEX status_notices_pending ON status_notices (created_at) WHERE started_at IS NULL;

-- The application role records a notice and when it was started, nothing else.
REVOKE ALL ON status_notices FROM internflow_app;
GRANT SELECT, INSERT ON status_notices TO internflow_app;
GRANT UPDATE (started_at) ON status_notices TO internflow_app;
