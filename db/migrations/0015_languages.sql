-- The languages e-mails and pages are written in: German, French and Spanish besides English and
-- Italian (a party's language, from the plan).
ALTER TABLE parties DROP CONSTRAINT parties_language_check;
ALTER TABLE parties ADD CONSTRAINT parties_language_check
    CHECK (language IN ('en', 'it', 'de', 'fr', 'es'));
