-- name: find_users
-- Which of these user ids already exist.
SELECT id FROM users WHERE id = ANY(%(ids)s);

-- name: find_projects
-- Which of these project ids already exist.
SELECT id FROM projects WHERE id = ANY(%(ids)s);

-- name: find_sessions
-- Existing sessions among these ids, with their project.
SELECT id, project_id FROM upload_sessions WHERE id = ANY(%(ids)s);

-- name: find_destinations
-- Existing destinations among these ids, with their session.
SELECT id, session_id FROM destinations WHERE id = ANY(%(ids)s);

-- name: insert_user
-- One user.
INSERT INTO users (id, email, name) VALUES (%(id)s, %(email)s, %(name)s);

-- name: insert_project
-- One project.
INSERT INTO projects (id, name, owner_id, created_at)
VALUES (%(id)s, %(name)s, %(owner_id)s, %(created_at)s);

-- name: insert_member
-- One membership; listing the owner again is harmless.
INSERT INTO members (project_id, user_id, role) VALUES (%(project_id)s, %(user_id)s, %(role)s);

-- name: insert_api_key
-- One API key, stored by the SHA-256 of its secret.
INSERT INTO api_keys (id, project_id, key_hash, name, created_at, expires_at, revoked_at)
VALUES (%(id)s, %(project_id)s, %(key_hash)s, %(name)s, %(created_at)s, %(expires_at)s,
        %(revoked_at)s);

-- name: insert_session
-- One upload session.
INSERT INTO upload_sessions (id, project_id, created_at, expires_at, status, tags,
                             long_polling_enabled)
VALUES (%(id)s, %(project_id)s, %(created_at)s, %(expires_at)s, %(status)s, %(tags)s,
        %(long_polling_enabled)s);

-- name: insert_destination
-- One destination of a session.
INSERT INTO destinations (id, session_id, type) VALUES (%(id)s, %(session_id)s, %(type)s);

-- name: insert_upload
-- One upload record.
INSERT INTO uploads (id, session_id, project_id, filename, size_bytes, mime_type, source,
                     is_encrypted, created_at)
VALUES (%(id)s, %(session_id)s, %(project_id)s, %(filename)s, %(size_bytes)s, %(mime_type)s,
        %(source)s, %(is_encrypted)s, %(created_at)s);

-- name: insert_deliveries
-- Every upload x destination delivery of the document in one statement, so the rollup
-- triggers make one set-based pass.
INSERT INTO deliveries (upload_id, destination_id, session_id, project_id, status)
SELECT * FROM unnest(%(upload_ids)s::uuid[], %(destination_ids)s::uuid[],
                     %(session_ids)s::uuid[], %(project_ids)s::uuid[], %(statuses)s::text[]);

-- name: find_taken_ids
-- Which of the document's own ids (and key hashes) the database already holds.
SELECT 'users' AS entity, id::text AS taken FROM users WHERE id = ANY(%(user_ids)s)
UNION ALL
SELECT 'projects', id::text FROM projects WHERE id = ANY(%(project_ids)s)
UNION ALL
SELECT 'apiKeys', id::text FROM api_keys WHERE id = ANY(%(api_key_ids)s)
UNION ALL
SELECT 'apiKeys.key', encode(key_hash, 'hex') FROM api_keys WHERE key_hash = ANY(%(key_hashes)s)
UNION ALL
SELECT 'sessions', id::text FROM upload_sessions WHERE id = ANY(%(session_ids)s)
UNION ALL
SELECT 'destinations', id::text FROM destinations WHERE id = ANY(%(destination_ids)s)
UNION ALL
SELECT 'uploads', id::text FROM uploads WHERE id = ANY(%(upload_ids)s);
