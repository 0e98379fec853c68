-- name: generate_world
-- A large synthetic world for benchmarks, built set-wise: Zipf-sized projects, a heavy user
-- who sees ~200 projects, a light user with one small project, a key per project,
-- sessions over 24 months, 0-4 destinations each, a delivery per upload x destination.
SELECT setseed(%(seed_fraction)s);
-- The rows are consistent by construction: skip per-row foreign-key checks (superuser only).
SET LOCAL session_replication_role = replica;

-- Bulk loads are fastest without secondary indexes: set them aside now and build each
-- once at the end (one sort), instead of millions of random B-tree inserts. Constraint
-- indexes stay; rows go in sorted by their keys.
SET LOCAL maintenance_work_mem = '512MB';
SET LOCAL work_mem = '256MB';
CREATE TEMP TABLE gen_set_aside ON COMMIT DROP AS
SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i
WHERE i.indrelid IN ('upload_sessions'::regclass, 'destinations'::regclass,
                     'uploads'::regclass, 'deliveries'::regclass, 'upload_rollups'::regclass)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid);
DO $$
DECLARE aside record;
BEGIN
    FOR aside IN SELECT name FROM gen_set_aside LOOP
        EXECUTE 'DROP INDEX ' || aside.name;
    END LOOP;
END
$$;

CREATE TEMP TABLE gen_projects ON COMMIT DROP AS
SELECT i AS idx,
       md5(%(seed)s || ':p:' || i)::uuid AS id,
       -- Zipf-like share of sessions (and so of uploads): rank i gets 1 / i^1.1.
       (1.0 / power(i, 1.1)) / sum(1.0 / power(i, 1.1)) OVER () AS share
FROM generate_series(1, %(projects)s) AS i;

INSERT INTO users (id, email, name)
SELECT md5(%(seed)s || ':u:' || i)::uuid, 'user' || i || '@example.com', 'User ' || i
FROM generate_series(1, %(users)s) AS i;

-- User 1 is heavy: owns every 5th of the first 250 projects and is a member of every 5th
-- (offset 1) of the first 750. User 2 is light: owns only the smallest project.
INSERT INTO projects (id, name, owner_id, created_at)
SELECT p.id, 'Project ' || p.idx,
       md5(%(seed)s || ':u:' || CASE
           WHEN p.idx = %(projects)s THEN 2
           WHEN p.idx <= 250 AND p.idx %% 5 = 1 THEN 1
           ELSE 3 + (p.idx %% (%(users)s - 2)) END)::uuid,
       now() - interval '800 days'
FROM gen_projects p;

INSERT INTO members (project_id, user_id, role)
SELECT p.id, md5(%(seed)s || ':u:1')::uuid, 'member'
FROM gen_projects p
WHERE p.idx <= 750 AND p.idx %% 5 = 2 AND p.idx <> %(projects)s;

INSERT INTO api_keys (id, project_id, key_hash, name, created_at)
SELECT md5(%(seed)s || ':k:' || p.idx)::uuid, p.id,
       sha256(convert_to('aptr_gen_' || md5(%(seed)s || ':key:' || p.idx), 'UTF8')),
       'generated', now() - interval '700 days'
FROM gen_projects p;

CREATE TEMP TABLE gen_sessions ON COMMIT DROP AS
SELECT row_number() OVER () AS idx, s.*
FROM (
    SELECT md5(%(seed)s || ':s:' || p.idx || ':' || n)::uuid AS id,
           p.id AS project_id,
           -- Squared uniform: more sessions lately, some in the current month.
           now() - power(random(), 2) * interval '730 days' AS created_at,
           floor(random() * 5)::int AS destination_count,
           random() AS draw
    FROM gen_projects p
    CROSS JOIN LATERAL generate_series(1, greatest(1, round(p.share * %(sessions)s)::int)) AS n
) AS s;

INSERT INTO upload_sessions (id, project_id, created_at, expires_at, status, tags,
                             long_polling_enabled)
SELECT s.id, s.project_id, s.created_at, s.created_at + interval '7 days',
       CASE WHEN s.draw < 0.6 THEN 'completed' WHEN s.draw < 0.8 THEN 'active'
            WHEN s.draw < 0.9 THEN 'pending' WHEN s.draw < 0.95 THEN 'expired'
            ELSE 'failed' END,
       CASE WHEN s.draw < 0.5 THEN NULL ELSE ARRAY['batch-' || (s.idx %% 7)] END,
       s.draw > 0.7
FROM gen_sessions s
ORDER BY s.id;

CREATE TEMP TABLE gen_destinations ON COMMIT DROP AS
SELECT md5(%(seed)s || ':d:' || s.idx || ':' || n)::uuid AS id, s.id AS session_id,
       (ARRAY['webhook', 's3', 'google_drive', 'dropbox', 'azure_blob'])[1 + (s.idx + n) %% 5]
           AS type
FROM gen_sessions s
CROSS JOIN LATERAL generate_series(1, s.destination_count) AS n;

INSERT INTO destinations (id, session_id, type)
SELECT id, session_id, type FROM gen_destinations ORDER BY id;

CREATE TEMP TABLE gen_uploads ON COMMIT DROP AS
SELECT md5(%(seed)s || ':f:' || i)::uuid AS id, s.id AS session_id, s.project_id,
       least(now(), s.created_at + random() * interval '2 days') AS created_at, i
FROM generate_series(1, %(uploads)s) AS i
JOIN gen_sessions s ON s.idx = 1 + (hashint4(i)::bigint + 2147483648) %% (SELECT count(*) FROM gen_sessions);

INSERT INTO uploads (id, session_id, project_id, filename, size_bytes, mime_type, source,
                     is_encrypted, created_at)
SELECT u.id, u.session_id, u.project_id, 'IMG_' || u.i || '.jpg',
       20000 + (hashint4(u.i + 1)::bigint + 2147483648) %% 12000000, 'image/jpeg',
       (ARRAY['camera', 'gallery', 'url', 'google_drive', 'google_photos', 'dropbox',
              'onedrive', 'box', 'instagram'])[1 + u.i %% 9],
       u.i %% 7 = 0, u.created_at
FROM gen_uploads u
ORDER BY u.id;

-- Mostly sent, some failed, some still pending.
-- With triggers off, the parents' copies (upload_created_at, destination_type) are written
-- here, as deliveries_copy_parents would.
INSERT INTO deliveries (upload_id, destination_id, session_id, project_id, status,
                        upload_created_at, destination_type)
SELECT upload_id, destination_id, session_id, project_id,
       CASE WHEN r < 0.85 THEN 'sent' WHEN r < 0.93 THEN 'failed' ELSE 'pending' END,
       upload_created_at, destination_type
FROM (SELECT u.id AS upload_id, d.id AS destination_id, u.session_id, u.project_id,
             u.created_at AS upload_created_at, d.type AS destination_type, random() AS r
      FROM gen_uploads u
      JOIN gen_destinations d ON d.session_id = u.session_id) AS pairs
ORDER BY upload_id, destination_id;

-- Triggers were off with the foreign-key checks: count the rollups once, set-wise.
SELECT rebuild_rollups();

DO $$
DECLARE aside record;
BEGIN
    FOR aside IN SELECT definition FROM gen_set_aside LOOP
        EXECUTE aside.definition;
    END LOOP;
END
$$;

-- name: vacuum_world
-- After a bulk load: planner statistics, and the visibility map index-only scans rely on.
VACUUM (ANALYZE) users, projects, members, api_keys, upload_sessions, destinations, uploads,
    deliveries, project_rollups, session_rollups, upload_rollups, project_status_rollups,
    project_session_status_rollups, series_rollups;

-- name: generated_callers
-- Who to call the generated world as: the heavy and light users, and a key of the heavy user.
SELECT md5(%(seed)s || ':u:1')::uuid AS heavy_user_id,
       md5(%(seed)s || ':u:2')::uuid AS light_user_id,
       'aptr_gen_' || md5(%(seed)s || ':key:1') AS api_key;
