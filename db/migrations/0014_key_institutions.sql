-- Operator keys belong to institutions: a key sees, lists, starts and changes only the
-- internships of its institutions, unless it was made for every institution. Admin keys are
-- global. Keys made before this migration keep working as before: every institution.
ALTER TABLE api_keys ADD COLUMN all_institutions boolean NOT NULL DEFAULT true;
ALTER TABLE api_keys ALTER COLUMN all_institutions SET DEFAULT false;
ALTER TABLE api_keys ADD COLUMN institutions text[] NOT NULL DEFAULT '{}';
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scope CHECK (
    CASE role
        WHEN 'admin' THEN all_institutions AND cardinality(institutions) = 0
        ELSE all_institutions <> (cardinality(institutions) > 0)
    END
);
