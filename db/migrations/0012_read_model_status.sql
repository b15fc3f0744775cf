-- The read model people read: each internship's status as its workflow saw it at its latest record
-- (phase, dates in force, approvals per plan version, milestones with what is owed, deadlines).
-- Status, the API and the dashboard read it instead of asking the workflow.
ALTER TABLE internships ADD COLUMN status jsonb;
