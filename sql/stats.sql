-- name: project_stats
-- Aggregate figures over the caller's projects; the month is the current UTC calendar month.
WITH this_month AS (
    -- Month arithmetic on plain UTC timestamps, so the session time zone cannot shift it.
    SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS starts,
           (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month')
               AT TIME ZONE 'UTC' AS ends
),
session_counts AS (
    SELECT s.project_id,
           count(*) AS sessions_total,
           count(*) FILTER (WHERE s.created_at >= m.starts AND s.created_at < m.ends)
               AS sessions_this_month
    FROM upload_sessions s
    CROSS JOIN this_month m
    WHERE s.project_id = ANY(%(project_ids)s)
    GROUP BY s.project_id
),
delivery_counts AS (
    SELECT count(DISTINCT upload_id) FILTER (WHERE status = 'sent') AS images_delivered,
           count(*) FILTER (WHERE status = 'sent') AS sent,
           count(*) FILTER (WHERE status = 'failed') AS failed
    FROM deliveries
    WHERE project_id = ANY(%(project_ids)s)
),
top_projects AS (
    SELECT p.id, p.name, sc.sessions_this_month AS sessions
    FROM session_counts sc
    JOIN projects p ON p.id = sc.project_id
    WHERE sc.sessions_this_month > 0
    ORDER BY sc.sessions_this_month DESC, p.name COLLATE "C", p.id
    LIMIT 10
)
SELECT
    (SELECT coalesce(sum(sessions_this_month), 0) FROM session_counts)::bigint
        AS sessions_this_month,
    (SELECT coalesce(sum(sessions_total), 0) FROM session_counts)::bigint AS sessions_total,
    (SELECT count(*) FROM uploads WHERE project_id = ANY(%(project_ids)s)) AS images_uploaded,
    dc.images_delivered,
    -- sent / (sent + failed) as a percentage, rounded half up in integer arithmetic.
    CASE WHEN dc.sent + dc.failed = 0 THEN 0
         ELSE (200 * dc.sent + dc.sent + dc.failed) / (2 * (dc.sent + dc.failed))
    END AS delivery_success_rate,
    (SELECT count(*) FROM projects WHERE id = ANY(%(project_ids)s)) AS total_projects,
    (SELECT count(*) FROM api_keys
      WHERE project_id = ANY(%(project_ids)s)
        AND (revoked_at IS NULL OR revoked_at > now())
        AND (expires_at IS NULL OR expires_at > now())) AS active_keys,
    (SELECT coalesce(json_agg(json_build_object('id', t.id, 'name', t.name,
                                                'sessions', t.sessions)
                              ORDER BY t.sessions DESC, t.name COLLATE "C", t.id), '[]'::json)
       FROM top_projects t) AS top_projects
FROM delivery_counts dc;
