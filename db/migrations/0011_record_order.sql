-- The read model's phase follows the workflow's records in the order the workflow made them.
-- Two records made at the same workflow time (an update and a timer in one workflow task) run as
-- separate activities in either order; the time alone let the earlier phase win.
-- record_seq is the record's position in the internship's timeline (it carries over
-- continue-as-new), so (updated_at, record_seq) orders every record of an internship.
ALTER TABLE internships ADD COLUMN record_seq bigint NOT NULL DEFAULT 0;
