-- name: list_uploads
-- One page of the caller's uploads, newest first, with delivery counts, breakdown and status.
-- Every row carries the scope's total; a page past the end is one row with a NULL id.
-- The walk that finds the page (scope .. page_keys) is the same as in sessions.sql.
WITH scope AS MATERIALIZED (
    SELECT project_id FROM caller_projects(%(user_id)s, %(key_hash)s)
),
sizes AS MATERIALIZED (
    SELECT scope.project_id, r.uploads
    FROM scope
    CROSS JOIN LATERAL (
        SELECT sum(r.uploads)::bigint AS uploads FROM project_rollups r
        WHERE r.project_id = scope.project_id
    ) AS r
),
plan AS MATERIALIZED (
    -- Index entries each way of finding the page would read: per project (its newest
    -- limit+offset) or one walk over every project (limit+offset over the scope's share).
    SELECT coalesce(sum(uploads), 0)::bigint AS total,
           %(offset)s::bigint < coalesce(sum(uploads), 0) AS in_range,
           coalesce(sum(least(uploads, %(limit)s::bigint + %(offset)s::bigint)), 0)
               <= (%(limit)s::bigint + %(offset)s::bigint)
                  * greatest((SELECT reltuples FROM pg_class WHERE oid = 'uploads'::regclass),
                             sum(uploads))
                  / greatest(sum(uploads), 1) AS per_project
    FROM sizes
),
page_keys AS (
    SELECT k.created_at, k.id
    FROM sizes CROSS JOIN LATERAL (
        SELECT u.created_at, u.id FROM uploads u
        WHERE u.project_id = sizes.project_id
        ORDER BY u.created_at DESC, u.id DESC
        LIMIT %(limit)s::bigint + %(offset)s::bigint
    ) AS k
    WHERE (SELECT in_range AND per_project FROM plan)
    UNION ALL
    (SELECT u.created_at, u.id FROM uploads u
     WHERE (SELECT in_range AND NOT per_project FROM plan)
       -- IS TRUE keeps the membership test a hashed lookup instead of a join,
       -- so the walk stays in index order and stops at limit+offset.
       AND (u.project_id IN (SELECT project_id FROM scope)) IS TRUE
     ORDER BY u.created_at DESC, u.id DESC
     LIMIT %(limit)s::bigint + %(offset)s::bigint)
    ORDER BY created_at DESC, id DESC
    LIMIT %(limit)s::bigint OFFSET %(offset)s::bigint
),
page AS (
    -- A page holds at most 100 rows (the largest pageSize). Saying so as a constant keeps
    -- the generic plan on index lookups for the page's own rows and deliveries.
    SELECT u.*
    FROM (SELECT id FROM page_keys LIMIT 100) AS k
    JOIN uploads u ON u.id = k.id
),
per_type AS (
    SELECT dl.upload_id,
           dst.type,
           count(*) AS deliveries,
           count(*) FILTER (WHERE dl.status = 'sent') AS sent,
           count(*) FILTER (WHERE dl.status = 'failed') AS failed
    FROM page p
    JOIN deliveries dl ON dl.upload_id = p.id
    JOIN destinations dst ON dst.id = dl.destination_id
    GROUP BY dl.upload_id, dst.type
),
per_upload AS (
    SELECT upload_id,
           sum(deliveries)::bigint AS total,
           sum(sent)::bigint AS sent,
           sum(failed)::bigint AS failed,
           json_agg(json_build_object('type', type, 'count', deliveries)
                    ORDER BY type COLLATE "C") AS breakdown
    FROM per_type
    GROUP BY upload_id
),
page_rows AS (
    SELECT p.id,
           p.filename,
           p.size_bytes,
           p.mime_type,
           p.source,
           p.is_encrypted,
           p.created_at,
           p.session_id,
           p.project_id,
           (SELECT name FROM projects WHERE id = p.project_id) AS project_name,
           coalesce(pu.total, 0) AS destinations_total,
           coalesce(pu.sent, 0) AS destinations_delivered,
           coalesce(pu.failed, 0) AS destinations_failed,
           coalesce(pu.breakdown, '[]'::json) AS destinations_breakdown,
           CASE WHEN pu.total IS NULL THEN 'stored_only'
                WHEN pu.sent = pu.total THEN 'delivered'
                WHEN pu.failed = 0 THEN 'pending'
                WHEN pu.sent = 0 THEN 'failed'
                ELSE 'partial' END AS status
    FROM page p
    LEFT JOIN per_upload pu ON pu.upload_id = p.id
)
SELECT plan.total, page_rows.*
FROM plan LEFT JOIN page_rows ON true
ORDER BY page_rows.created_at DESC, page_rows.id DESC;
