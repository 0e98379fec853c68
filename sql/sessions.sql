-- name: list_sessions
-- One page of the caller's sessions, newest first, with their rolled-up image and destination counts.
-- Every row carries the scope's total; a page past the end is one row with a NULL id.
-- The walk that finds the page (scope .. page_keys) is the same as in uploads.sql.
WITH scope AS MATERIALIZED (
    SELECT project_id FROM caller_projects(%(user_id)s, %(key_hash)s)
),
sizes AS MATERIALIZED (
    SELECT scope.project_id, r.sessions
    FROM scope
    CROSS JOIN LATERAL (
        SELECT sum(r.sessions)::bigint AS sessions FROM project_rollups r
        WHERE r.project_id = scope.project_id
    ) AS r
),
plan AS MATERIALIZED (
    -- Index entries each way of finding the page would read: per project (its newest
    -- limit+offset) or one walk over every project (limit+offset over the scope's share).
    SELECT coalesce(sum(sessions), 0)::bigint AS total,
           %(offset)s::bigint < coalesce(sum(sessions), 0) AS in_range,
           coalesce(sum(least(sessions, %(limit)s::bigint + %(offset)s::bigint)), 0)
               <= (%(limit)s::bigint + %(offset)s::bigint)
                  * greatest((SELECT reltuples FROM pg_class
                              WHERE oid = 'upload_sessions'::regclass), sum(sessions))
                  / greatest(sum(sessions), 1) AS per_project
    FROM sizes
),
page_keys AS (
    SELECT k.created_at, k.id
    FROM sizes CROSS JOIN LATERAL (
        SELECT s.created_at, s.id FROM upload_sessions s
        WHERE s.project_id = sizes.project_id
        ORDER BY s.created_at DESC, s.id DESC
        LIMIT %(limit)s::bigint + %(offset)s::bigint
    ) AS k
    WHERE (SELECT in_range AND per_project FROM plan)
    UNION ALL
    (SELECT s.created_at, s.id FROM upload_sessions s
     WHERE (SELECT in_range AND NOT per_project FROM plan)
       -- IS TRUE keeps the membership test a hashed lookup instead of a join,
       -- so the walk stays in index order and stops at limit+offset.
       AND (s.project_id IN (SELECT project_id FROM scope)) IS TRUE
     ORDER BY s.created_at DESC, s.id DESC
     LIMIT %(limit)s::bigint + %(offset)s::bigint)
    ORDER BY created_at DESC, id DESC
    LIMIT %(limit)s::bigint OFFSET %(offset)s::bigint
),
page_rows AS (
    SELECT s.id,
           s.created_at,
           s.expires_at,
           CASE WHEN s.status IN ('pending', 'active') AND s.expires_at <= now()
                THEN 'expired' ELSE s.status END AS status,
           s.project_id,
           (SELECT name FROM projects WHERE id = s.project_id) AS project_name,
           coalesce(r.images, 0) AS images_count,
           coalesce(r.images_delivered, 0) AS images_delivered,
           coalesce(r.images_failed, 0) AS images_failed,
           coalesce(r.destinations, 0) AS destinations_count,
           nullif(s.tags, '{}') AS tags,
           s.long_polling_enabled
    -- A page holds at most 100 rows (the largest pageSize). Saying so as a constant keeps
    -- the generic plan on index lookups for the page's own rows.
    FROM (SELECT id FROM page_keys LIMIT 100) AS k
    JOIN upload_sessions s ON s.id = k.id
    LEFT JOIN session_rollups r ON r.session_id = s.id
)
SELECT plan.total, page_rows.*
FROM plan LEFT JOIN page_rows ON true
ORDER BY page_rows.created_at DESC, page_rows.id DESC;
