-- name: project_stats
-- Aggregate figures over the caller's projects (only project_id, when given), from the
-- rollups; the month is the current UTC calendar month. project_visible is false when
-- project_id is out of scope. Each project in scope costs a few index lookups (LATERAL, so the
-- plan stays on them whatever the scope's size), never a pass over every project.
WITH scope AS MATERIALIZED (
    SELECT project_id FROM caller_projects(%(user_id)s, %(key_hash)s)
    WHERE project_id = coalesce(%(project_id)s::uuid, project_id)
),
per_project AS MATERIALIZED (
    SELECT s.project_id, r.sessions, r.uploads, r.uploads_delivered, r.sent, r.failed,
           m.sessions_this_month, k.active_keys
    FROM scope s
    CROSS JOIN LATERAL (
        SELECT sum(r.sessions) AS sessions,
               sum(r.uploads) AS uploads,
               sum(r.uploads_delivered) AS uploads_delivered,
               sum(r.deliveries_sent) AS sent,
               sum(r.deliveries_failed) AS failed
        FROM project_rollups r
        WHERE r.project_id = s.project_id
    ) AS r
    CROSS JOIN LATERAL (
        SELECT coalesce(sum(m.sessions), 0) AS sessions_this_month
        FROM series_rollups m
        WHERE m.project_id = s.project_id AND m.dimension = '' AND m.grain = 'month'
          AND m.at = series_cell('month', now())
    ) AS m
    CROSS JOIN LATERAL (
        SELECT count(*) AS active_keys
        FROM usable_api_keys k
        WHERE k.project_id = s.project_id
    ) AS k
),
totals AS (
    SELECT coalesce(sum(sessions_this_month), 0)::bigint AS sessions_this_month,
           coalesce(sum(sessions), 0)::bigint AS sessions,
           coalesce(sum(uploads), 0)::bigint AS uploads,
           coalesce(sum(uploads_delivered), 0)::bigint AS uploads_delivered,
           coalesce(sum(sent), 0)::bigint AS sent,
           coalesce(sum(failed), 0)::bigint AS failed,
           count(*) AS projects,
           coalesce(sum(active_keys), 0)::bigint AS active_keys
    FROM per_project
),
top_projects AS (
    SELECT p.id, p.name, pp.sessions_this_month::bigint AS sessions
    FROM per_project pp
    CROSS JOIN LATERAL (SELECT id, name FROM projects WHERE id = pp.project_id) AS p
    WHERE pp.sessions_this_month > 0
    ORDER BY pp.sessions_this_month DESC, p.name COLLATE "C", p.id
    LIMIT 10
)
SELECT
    t.projects > 0 OR %(project_id)s::uuid IS NULL AS project_visible,
    t.sessions_this_month,
    t.sessions AS sessions_total,
    t.uploads AS images_uploaded,
    t.uploads_delivered AS images_delivered,
    -- sent / (sent + failed) as a percentage, rounded half up in integer arithmetic.
    CASE WHEN t.sent + t.failed = 0 THEN 0
         ELSE (200 * t.sent + t.sent + t.failed) / (2 * (t.sent + t.failed))
    END AS delivery_success_rate,
    t.projects AS total_projects,
    t.active_keys,
    (SELECT coalesce(json_agg(json_build_object('id', tp.id, 'name', tp.name,
                                                'sessions', tp.sessions)
                              ORDER BY tp.sessions DESC, tp.name COLLATE "C", tp.id), '[]'::json)
       FROM top_projects tp) AS top_projects
FROM totals t;
