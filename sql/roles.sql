-- name: grant_api_role
-- The role the service connects as in production: it may read the API's tables and nothing else.
-- Without the right to create roles (no CREATEROLE), init-db warns and carries on.
DO $$
BEGIN
    BEGIN
        CREATE ROLE apertur_api LOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;  -- already there (possibly created a moment ago by a concurrent init-db)
    END;
    ALTER ROLE apertur_api SET default_transaction_read_only = on;
    GRANT USAGE ON SCHEMA public TO apertur_api;
    REVOKE ALL ON ALL TABLES IN SCHEMA public FROM apertur_api;
    REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM apertur_api;
    -- Every table and view of the schema: business rows, rollups, the migration ledger.
    GRANT SELECT ON ALL TABLES IN SCHEMA public TO apertur_api;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'read-only role apertur_api not set up: %', SQLERRM;
END
$$;
