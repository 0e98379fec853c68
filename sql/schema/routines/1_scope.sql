-- The caller's scope, defined once. Reads resolve it inside the statement that uses it, so
-- authentication and the data query can travel in one round trip. A caller is a user (JWT:
-- owned and member projects) or an API key (its project while usable); the unused argument
-- is NULL.

CREATE OR REPLACE VIEW usable_api_keys AS
    SELECT * FROM api_keys
    WHERE (revoked_at IS NULL OR revoked_at > now())  -- a future revokedAt is scheduled
      AND (expires_at IS NULL OR expires_at > now());

CREATE OR REPLACE FUNCTION caller_projects(caller_user uuid, caller_key bytea)
RETURNS TABLE (project_id uuid) LANGUAGE sql STABLE AS $$
    SELECT id FROM projects WHERE owner_id = caller_user
    UNION
    SELECT project_id FROM members WHERE user_id = caller_user
    UNION
    SELECT project_id FROM usable_api_keys WHERE key_hash = caller_key
$$;
