-- The intern's own voice: a self-assessment on the plan's rubric (at a milestone that asks for
-- one, and at the end) and, at the end, an evaluation of the placement. Both are submissions like
-- any other, kept with every word and never changed.
ALTER TABLE submissions DROP CONSTRAINT submissions_kind_check;
ALTER TABLE submissions ADD CONSTRAINT submissions_kind_check CHECK (kind IN (
    'approval', 'change_request', 'milestone_report', 'company_feedback',
    'assessment', 'validation', 'amendment', 'pause', 'resume', 'extension',
    'withdrawal', 'self_assessment', 'placement_evaluation'));

-- The school's view of its host companies reads the placement evaluations per internship.
CREATE INDEX submissions_kind ON submissions (kind, internship_id);

-- No new table and no new column: the application role keeps exactly what 0013_roles.sql gave it
-- (SELECT and INSERT on submissions, nothing more). Said again here so that this migration
-- decides the privileges of what it touches.
GRANT SELECT, INSERT ON submissions TO internflow_app;
