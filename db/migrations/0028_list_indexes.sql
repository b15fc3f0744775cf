-- The list at 50,000 internships (tests/test_list_plans.py): every filter it offers answers a
-- page from an index in the list's order (latest start first), reading about the page, not every
-- internship of other companies, institutions or phases. An operator's key limits every list to
-- its institutions, so the institution comes first in two of them; overdue internships are few,
-- so theirs are partial indexes. The single-column indexes of 0001 are covered by these.
CREATE INDEX internships_company_start ON internships (company_id, start_at DESC, internship_id);
CREATE INDEX internships_institution_start
    ON internships (institution_id, start_at DESC, internship_id);
CREATE INDEX internships_institution_listed
    ON internships (institution_id, phase, start_at DESC, internship_id);
CREATE INDEX internships_overdue_listed ON internships (start_at DESC, internship_id) WHERE overdue;
CREATE INDEX internships_overdue_phase_listed
    ON internships (phase, start_at DESC, internship_id) WHERE overdue;
DROP INDEX internships_phase;
DROP INDEX internships_company;
DROP INDEX internships_institution;
