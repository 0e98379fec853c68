-- name: find_project
-- A project by id, to check a key is created for something that exists.
SELECT id, name FROM projects WHERE id = %(project_id)s;

-- name: insert_generated_key
-- A newly generated API key; only its SHA-256 is kept.
INSERT INTO api_keys (id, project_id, key_hash, name, created_at)
VALUES (%(id)s, %(project_id)s, %(key_hash)s, %(name)s, now());
