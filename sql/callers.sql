-- name: find_api_key
-- A usable API key (neither revoked nor expired) by the SHA-256 of its secret.
SELECT id, project_id
FROM usable_api_keys
WHERE key_hash = %(key_hash)s;

-- name: find_user
-- A user by id.
SELECT id FROM users WHERE id = %(user_id)s;
