-- name: project_stats
-- Aggregate figures over the caller's projects, from the rollups; the month is the current
-- UTC calendar month.
WITH totals AS (
    SELECT coalesce(sum(sessions), 0)::bigint AS sessions,
           coalesce(sum(uploads), 0)::bigint AS uploads,
           coalesce(sum(uploads_delivered), 0)::bigint AS uploads_delivered,
           coalesce(sum(deliveries_sent), 0)::bigint AS sent,
           coalesce(sum(deliveries_failed), 0)::bigint AS failed
    FROM project_rollups
    WHERE project_id = ANY(%(project_ids)s)
),
this_month AS (
    SELECT m.project_id, sum(m.sessions)::bigint AS sessions
    FROM project_month_rollups m
    WHERE m.project_id = ANY(%(project_ids)s)
      AND m.month = utc_month(now())
    GROUP BY m.project_id
    HAVING sum(m.sessions) > 0
),
top_projects AS (
    SELECT p.id, p.name, t.sessions
    FROM this_month t
    JOIN projects p ON p.id = t.project_id
    ORDER BY t.sessions DESC, p.name COLLATE "C", p.id
    LIMIT 10
)
SELECT
    (SELECT coalesce(sum(sessions), 0) FROM this_month)::bigint AS sessions_this_month,
    t.sessions AS sessions_total,
    t.uploads AS images_uploaded,
    t.uploads_delivered AS images_delivered,
    -- sent / (sent + failed) as a percentage, rounded half up in integer arithmetic.
    CASE WHEN t.sent + t.failed = 0 THEN 0
         ELSE (200 * t.sent + t.sent + t.failed) / (2 * (t.sent + t.failed))
    END AS delivery_success_rate,
    (SELECT count(*) FROM projects WHERE id = ANY(%(project_ids)s)) AS total_projects,
    (SELECT count(*) FROM api_keys
      WHERE project_id = ANY(%(project_ids)s)
        AND (revoked_at IS NULL OR revoked_at > now())
        AND (expires_at IS NULL OR expires_at > now())) AS active_keys,
    (SELECT coalesce(json_agg(json_build_object('id', tp.id, 'name', tp.name,
                                                'sessions', tp.sessions)
                              ORDER BY tp.sessions DESC, tp.name COLLATE "C", tp.id), '[]'::json)
       FROM top_projects tp) AS top_projects
FROM totals t;
