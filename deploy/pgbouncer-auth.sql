-- PgBouncer's password lookup (deploy/pgbouncer.ini's auth_query), run once on the primary
-- as a superuser; it replicates to every standby. PgBouncer logs in as pgbouncer_auth (give
-- it a password, and the same one in PgBouncer's userlist.txt) and may read the password of
-- the API's role, apertur_api, and of no other role.
DO $$
BEGIN
    CREATE ROLE pgbouncer_auth LOGIN;
EXCEPTION WHEN duplicate_object THEN
    NULL;
END
$$;
CREATE SCHEMA IF NOT EXISTS pgbouncer_auth AUTHORIZATION pgbouncer_auth;
CREATE OR REPLACE FUNCTION pgbouncer_auth.user_password(p_user text)
RETURNS TABLE (username text, password text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog
AS $$
    SELECT usename::text, passwd FROM pg_shadow WHERE usename = p_user AND usename = 'apertur_api'
$$;
REVOKE ALL ON FUNCTION pgbouncer_auth.user_password(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgbouncer_auth.user_password(text) TO pgbouncer_auth;
