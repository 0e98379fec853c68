-- The caller's scope as one SQL definition, and a newest-first index over all projects.
--
-- Reads resolve the scope inside the statement that uses it, so authentication and the
-- data query can travel in one round trip. A caller is a user (JWT: owned and member
-- projects) or an API key (its project while usable); the unused argument is NULL.

CREATE VIEW usable_api_keys AS
    SELECT * FROM api_keys
    WHERE (revoked_at IS NULL OR revoked_at > now())  -- a future revokedAt is scheduled
      AND (expires_at IS NULL OR expires_at > now());

CREATE FUNCTION caller_projects(caller_user uuid, caller_key bytea)
RETURNS TABLE (project_id uuid) LANGUAGE sql STABLE AS $$
    SELECT id FROM projects WHERE owner_id = caller_user
    UNION
    SELECT project_id FROM members WHERE user_id = caller_user
    UNION
    SELECT project_id FROM usable_api_keys WHERE key_hash = caller_key
$$;

-- A scope that holds a large share of all rows finds its newest rows fastest by walking
-- every project's rows newest first and skipping the few outside it (index-only, thanks to
-- INCLUDE); a small scope walks its own projects' indexes instead. Queries pick per call.
CREATE INDEX uploads_recent_idx ON uploads (created_at DESC, id DESC) INCLUDE (project_id);
CREATE INDEX upload_sessions_recent_idx
    ON upload_sessions (created_at DESC, id DESC) INCLUDE (project_id);
