-- name: list_sessions
-- One page of the caller's sessions, newest first, with per-session image and destination counts.
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
),
upload_outcomes AS (
    -- Per upload of the page: did any delivery succeed, did any fail?
    SELECT u.session_id,
           bool_or(d.status = 'sent') IS TRUE AS any_sent,
           bool_or(d.status = 'failed') IS TRUE AS any_failed
    FROM uploads u
    LEFT JOIN deliveries d ON d.upload_id = u.id
    WHERE u.session_id IN (SELECT id FROM page)
    GROUP BY u.session_id, u.id
),
image_counts AS (
    SELECT session_id,
           count(*) AS images_count,
           count(*) FILTER (WHERE any_sent) AS images_delivered,
           count(*) FILTER (WHERE any_failed) AS images_failed
    FROM upload_outcomes
    GROUP BY session_id
),
destination_counts AS (
    SELECT session_id, count(*) AS destinations_count
    FROM destinations
    WHERE session_id IN (SELECT id FROM page)
    GROUP BY session_id
)
SELECT p.id,
       p.created_at,
       p.expires_at,
       CASE WHEN p.status IN ('pending', 'active') AND p.expires_at <= now()
            THEN 'expired' ELSE p.status END AS status,
       p.project_id,
       pr.name AS project_name,
       coalesce(ic.images_count, 0) AS images_count,
       coalesce(ic.images_delivered, 0) AS images_delivered,
       coalesce(ic.images_failed, 0) AS images_failed,
       coalesce(dc.destinations_count, 0) AS destinations_count,
       nullif(p.tags, '{}') AS tags,
       p.long_polling_enabled
FROM page p
JOIN projects pr ON pr.id = p.project_id
LEFT JOIN image_counts ic ON ic.session_id = p.id
LEFT JOIN destination_counts dc ON dc.session_id = p.id
ORDER BY p.created_at DESC, p.id DESC;

-- name: count_sessions
-- How many sessions the caller can see.
SELECT count(*) AS total
FROM upload_sessions
WHERE project_id = ANY(%(project_ids)s);
