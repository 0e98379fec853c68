-- name: list_sessions
-- One page of the caller's sessions, newest first, with their rolled-up image and destination counts.
WITH page AS (
    -- Each project's newest rows from its index, then merged: `project_id = ANY(...)`
    -- with ORDER BY ... LIMIT would sort every row of every project in scope.
    SELECT s.id, s.project_id, s.created_at, s.expires_at, s.status, s.tags,
           s.long_polling_enabled
    FROM unnest(%(project_ids)s::uuid[]) AS scope (project_id)
    CROSS JOIN LATERAL (
        SELECT * FROM upload_sessions s
        WHERE s.project_id = scope.project_id
        ORDER BY s.created_at DESC, s.id DESC
        LIMIT %(limit)s + %(offset)s
    ) AS s
    ORDER BY s.created_at DESC, s.id DESC
    LIMIT %(limit)s OFFSET %(offset)s
)
SELECT p.id,
       p.created_at,
       p.expires_at,
       CASE WHEN p.status IN ('pending', 'active') AND p.expires_at <= now()
            THEN 'expired' ELSE p.status END AS status,
       p.project_id,
       pr.name AS project_name,
       coalesce(r.images, 0) AS images_count,
       coalesce(r.images_delivered, 0) AS images_delivered,
       coalesce(r.images_failed, 0) AS images_failed,
       coalesce(r.destinations, 0) AS destinations_count,
       nullif(p.tags, '{}') AS tags,
       p.long_polling_enabled
FROM page p
JOIN projects pr ON pr.id = p.project_id
LEFT JOIN session_rollups r ON r.session_id = p.id
ORDER BY p.created_at DESC, p.id DESC;

-- name: count_sessions
-- How many sessions the caller can see, from the rollups.
SELECT coalesce(sum(sessions), 0)::bigint AS total
FROM project_rollups
WHERE project_id = ANY(%(project_ids)s);
