-- The badge images schools give with their plans (a PNG or an SVG, checked where the plan comes
-- in: badges/artwork.py) and the images internflow draws for templates that name none, each
-- kept once under the SHA-256 of its content. A plan names its image `sha256-<digest>.png` (or
-- `.svg`), so that the image never travels in the workflow's history; `GET /images/<name>` serves
-- it, the achievement's image in every credential that names it. Images are never changed or
-- removed: a signed credential points at one for good.
CREATE TABLE badge_images (
    digest     text PRIMARY KEY CHECK (digest ~ '^[0-9a-f]{64}$'),
    media_type text NOT NULL CHECK (media_type = ANY (ARRAY['image/png', 'image/svg+xml'])),
    content    bytea NOT NULL CHECK (octet_length(content) <= 524288),
    created_at timestamptz NOT NULL DEFAULT now()
);

REVOKE ALL ON badge_images FROM internflow_app;
GRANT SELECT, INSERT ON badge_images TO internflow_app;
