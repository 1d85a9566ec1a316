-- 0002: unique e-mail addresses (full schema after this migration, see 0001).
CREATE TABLE customers (
    id         BIGSERIAL PRIMARY KEY,
    email      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX CONCURRENTLY customers_email_key ON customers (lower(email));
