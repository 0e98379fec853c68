-- name: list_uploads
-- One page of the caller's uploads, newest first, with delivery counts, breakdown and status.
WITH page AS (
    -- Each project's newest rows from its index, then merged: `project_id = ANY(...)`
    -- with ORDER BY ... LIMIT would sort every row of every project in scope.
    SELECT u.id, u.session_id, u.project_id, u.filename, u.size_bytes, u.mime_type,
           u.source, u.is_encrypted, u.created_at
    FROM unnest(%(project_ids)s::uuid[]) AS scope (project_id)
    CROSS JOIN LATERAL (
        SELECT * FROM uploads u
        WHERE u.project_id = scope.project_id
        ORDER BY u.created_at DESC, u.id DESC
        LIMIT %(limit)s + %(offset)s
    ) AS u
    ORDER BY u.created_at DESC, u.id DESC
    LIMIT %(limit)s OFFSET %(offset)s
),
per_type AS (
    SELECT d.upload_id,
           dst.type,
           count(*) AS deliveries,
           count(*) FILTER (WHERE d.status = 'sent') AS sent,
           count(*) FILTER (WHERE d.status = 'failed') AS failed
    FROM deliveries d
    JOIN destinations dst ON dst.id = d.destination_id
    WHERE d.upload_id IN (SELECT id FROM page)
    GROUP BY d.upload_id, dst.type
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
)
SELECT p.id,
       p.filename,
       p.size_bytes,
       p.mime_type,
       p.source,
       p.is_encrypted,
       p.created_at,
       p.session_id,
       p.project_id,
       pr.name AS project_name,
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
JOIN projects pr ON pr.id = p.project_id
LEFT JOIN per_upload pu ON pu.upload_id = p.id
ORDER BY p.created_at DESC, p.id DESC;

-- name: count_uploads
-- How many uploads the caller can see, from the rollups.
SELECT coalesce(sum(uploads), 0)::bigint AS total
FROM project_rollups
WHERE project_id = ANY(%(project_ids)s);
