-- name: project_stats
-- Aggregate figures over the caller's projects, from the rollups; the month is the current
-- UTC calendar month.
WITH scope AS MATERIALIZED (
    SELECT project_id FROM caller_projects(%(user_id)s, %(key_hash)s)
),
totals AS (
    SELECT coalesce(sum(sessions), 0)::bigint AS sessions,
           coalesce(sum(uploads), 0)::bigint AS uploads,
           coalesce(sum(uploads_delivered), 0)::bigint AS uploads_delivered,
           coalesce(sum(deliveries_sent), 0)::bigint AS sent,
           coalesce(sum(deliveries_failed), 0)::bigint AS failed
    FROM scope JOIN project_rollups USING (project_id)
),
this_month AS (
    SELECT m.project_id, sum(m.sessions)::bigint AS sessions
    FROM scope JOIN project_month_rollups m USING (project_id)
    WHERE m.month = utc_month(now())
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
    (SELECT count(*) FROM scope) AS total_projects,
    (SELECT count(*) FROM scope JOIN usable_api_keys USING (project_id)) AS active_keys,
    (SELECT coalesce(json_agg(json_build_object('id', tp.id, 'name', tp.name,
                                                'sessions', tp.sessions)
                              ORDER BY tp.sessions DESC, tp.name COLLATE "C", tp.id), '[]'::json)
       FROM top_projects tp) AS top_projects
FROM totals t;
