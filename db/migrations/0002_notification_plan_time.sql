-- The workflow time each notification belongs to (plan time, which tests move faster than clocks).
ALTER TABLE notifications ADD COLUMN planned_at timestamptz;
CREATE INDEX notifications_planned ON notifications (internship_id, planned_at);
