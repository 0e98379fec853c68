-- name: lock_migrations
-- Serialise concurrent init-db runs for the rest of the transaction.
SELECT pg_advisory_xact_lock(7304120551);

-- name: create_migrations_table
-- The ledger of applied schema files.
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: list_applied_migrations
-- Versions already applied.
SELECT version FROM schema_migrations ORDER BY version;

-- name: record_migration
-- Mark a schema file, or a version of the routines, as applied (again).
INSERT INTO schema_migrations (version) VALUES (%(version)s)
ON CONFLICT (version) DO UPDATE SET applied_at = now();

-- name: fill_empty_rollups
-- Count the rollups that are still empty (new ones) from the base tables.
SELECT fill_empty_rollups();
