-- name: find_api_key
-- A usable API key (neither revoked nor expired) by the SHA-256 of its secret.
SELECT id, project_id
FROM usable_api_keys
WHERE key_hash = %(key_hash)s;

-- name: find_user
-- A user by id.
SELECT id FROM users WHERE id = %(user_id)s;

-- name: describe_api_key
-- The usable API key with this SHA-256 digest, with its project's name.
SELECT k.id, k.name, k.project_id, p.name AS project_name, k.created_at, k.expires_at
FROM usable_api_keys k
JOIN projects p ON p.id = k.project_id
WHERE k.key_hash = %(key_hash)s;
