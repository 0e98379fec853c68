-- name: find_api_key
-- The project of a usable API key, by the SHA-256 of its secret.
SELECT id, project_id
FROM api_keys
WHERE key_hash = %(key_hash)s
  AND (revoked_at IS NULL OR revoked_at > now())
  AND (expires_at IS NULL OR expires_at > now());

-- name: find_user_projects
-- Whether the user exists, and every project it owns or is a member of.
SELECT u.id,
       ARRAY(SELECT p.id FROM projects p WHERE p.owner_id = u.id
             UNION
             SELECT m.project_id FROM members m WHERE m.user_id = u.id) AS project_ids
FROM users u
WHERE u.id = %(user_id)s;

-- name: find_user
-- A user by id.
SELECT id FROM users WHERE id = %(user_id)s;
