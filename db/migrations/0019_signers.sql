-- Signers as data: a plan may name more signers of the learning agreement than the intern, the
-- tutor and the mentor (a guardian, the company's representative, the sending and receiving
-- coordinators), each a row of `parties` under their role; and an operator may record a
-- signature given on paper, a submission like any other.
ALTER TABLE parties DROP CONSTRAINT parties_role_check;
ALTER TABLE parties ADD CONSTRAINT parties_role_check CHECK (role IN (
    'intern', 'tutor', 'mentor', 'company', 'operator',
    'guardian', 'company_representative', 'sending_coordinator', 'receiving_coordinator'));

ALTER TABLE submissions DROP CONSTRAINT submissions_kind_check;
ALTER TABLE submissions ADD CONSTRAINT submissions_kind_check CHECK (kind IN (
    'approval', 'change_request', 'milestone_report', 'company_feedback',
    'assessment', 'validation', 'amendment', 'pause', 'resume', 'extension',
    'withdrawal', 'self_assessment', 'placement_evaluation', 'paper_signature'));

-- No new table and no new column: the application role keeps what 0013_roles.sql gave it on the
-- tables this migration touches (said again here, so that this migration decides them).
GRANT SELECT, INSERT ON submissions TO internflow_app;
