-- 0001: initial schema.
-- The example's stand-in "database" (deployed/db/<database>.schema) is
-- replaced by this file when the migration is applied, so each file holds
-- the full schema after its migration.
CREATE TABLE customers (
    id         BIGSERIAL PRIMARY KEY,
    email      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
