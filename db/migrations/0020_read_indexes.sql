-- Indexes for what people read at thousands of open internships (the API's list and search,
-- latest start first): each filter the list offers comes with the list's order, so a page is an
-- index range, not a sort of every matching row.
CREATE INDEX internships_listed ON internships (start_at DESC, internship_id);
CREATE INDEX internships_phase_listed ON internships (phase, start_at DESC, internship_id);
CREATE INDEX internships_company_listed
    ON internships (company_id, phase, start_at DESC, internship_id);
-- The list's text search (`q`: a part of a party's name, e-mail address or id) looks for a
-- substring; trigram indexes answer that without reading every party. pg_trgm is a trusted
-- extension: the database's owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX parties_text
    ON parties USING gin (name gin_trgm_ops, email gin_trgm_ops, party_id gin_trgm_ops);
