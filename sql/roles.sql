-- name: stage_api_role_settings
-- The session settings grant_api_role stores on the role (a JSON object, name → value),
-- handed over in a transaction-local setting because a DO block takes no parameters.
SELECT set_config('apertur.api_role_settings', %(settings)s, true);

-- name: grant_api_role
-- The role the service connects as in production: it may read the API's tables and nothing
-- else, and its sessions start with the service's settings even where nothing sends them
-- (PgBouncer in transaction mode refuses startup options).
-- Without the right to create roles (no CREATEROLE), init-db warns and carries on.
DO $$
DECLARE
    setting record;
BEGIN
    BEGIN
        CREATE ROLE apertur_api LOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;  -- already there (possibly created a moment ago by a concurrent init-db)
    END;
    FOR setting IN
        SELECT key, value FROM jsonb_each_text(current_setting('apertur.api_role_settings')::jsonb)
    LOOP
        EXECUTE format('ALTER ROLE apertur_api SET %I = %L', setting.key, setting.value);
    END LOOP;
    GRANT USAGE ON SCHEMA public TO apertur_api;
    REVOKE ALL ON ALL TABLES IN SCHEMA public FROM apertur_api;
    REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM apertur_api;
    -- Every table and view of the schema: business rows, rollups, the migration ledger.
    GRANT SELECT ON ALL TABLES IN SCHEMA public TO apertur_api;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'read-only role apertur_api not set up: %', SQLERRM;
END
$$;
