-- An institution's LinkedIn organization: the numeric id of its LinkedIn page. When set, the
-- "Add to LinkedIn profile" link of its badges names the issuer by organizationId (LinkedIn then
-- shows the page and its logo) instead of organizationName (decision 0040). It is in no signed
-- document, so it may be set, changed or cleared at any time; the application role may change it.
ALTER TABLE institutions
    ADD COLUMN linkedin_organization_id text
        CHECK (linkedin_organization_id ~ '^[1-9][0-9]{0,18}$');
GRANT UPDATE (linkedin_organization_id) ON institutions TO internflow_app;
