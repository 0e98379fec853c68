-- name: list_sessions
-- One page of the caller's sessions, newest first, with their rolled-up image and destination counts.
-- Filters (each NULL when not asked for): project_id, statuses (as reported: a pending or
-- active session past its expiry is expired), tag, created_from (inclusive);
-- before_at/before_id is an exclusive upper bound in list order (the end of a date window,
-- or a cursor's last row); session_id picks one session.
-- Every row carries the matching total (NULL unless with_total); a page past the end is one
-- row with a NULL id. The walk (scope .. page_keys) has the same steps as uploads.sql's:
-- SQL cannot take the table as a parameter without dynamic SQL, which would lose the
-- prepared generic plans, so each statement names its own tables and indexes.
WITH scope AS MATERIALIZED (
    SELECT project_id, sessions AS size
    FROM scope_sizes(%(user_id)s, %(key_hash)s, %(project_id)s)
),
filters AS MATERIALIZED (
    -- The stored statuses that can be reported as one of those asked for.
    SELECT ARRAY(SELECT unnest(%(statuses)s::text[])
                 UNION SELECT unnest('{pending,active}'::text[])
                       WHERE 'expired' = ANY(%(statuses)s::text[])) AS stored_statuses,
           -- The rollups count a project's sessions over all time (by stored status or not).
           %(created_from)s::timestamptz IS NULL AND %(before_at)s::timestamptz IS NULL
               AND %(tag)s::text IS NULL AS all_time
),
totals AS MATERIALIZED (
    SELECT CASE
        WHEN NOT %(with_total)s::boolean THEN NULL
        WHEN (SELECT all_time FROM filters) AND %(statuses)s::text[] IS NULL
            THEN (SELECT coalesce(sum(size), 0)::bigint FROM scope)
        WHEN (SELECT all_time FROM filters) THEN (
            -- From the stored-status rollup: a pending or active session counts as itself
            -- while live (an index range on expiry: few) and as expired after.
            SELECT coalesce(sum(CASE
                WHEN r.status IN ('pending', 'active') THEN
                    CASE WHEN r.status = ANY(%(statuses)s::text[])
                         THEN live.sessions ELSE 0 END
                    + CASE WHEN 'expired' = ANY(%(statuses)s::text[])
                           THEN r.sessions - live.sessions ELSE 0 END
                WHEN r.status = ANY(%(statuses)s::text[]) THEN r.sessions
                ELSE 0 END), 0)::bigint
            FROM scope
            CROSS JOIN LATERAL (
                SELECT r.status, sum(r.sessions) AS sessions
                FROM project_session_status_rollups r
                WHERE r.project_id = scope.project_id
                GROUP BY r.status
            ) AS r
            CROSS JOIN LATERAL (
                SELECT count(*) AS sessions FROM upload_sessions s
                WHERE r.status IN ('pending', 'active')
                  AND s.project_id = scope.project_id AND s.status = r.status
                  AND s.expires_at > now()
            ) AS live)
        WHEN %(statuses)s::text[] IS NOT NULL THEN (
            SELECT count(*) FROM scope
            JOIN upload_sessions s ON s.project_id = scope.project_id
            WHERE s.status = ANY((SELECT stored_statuses FROM filters)::text[])
              AND reported_session_status(s.status, s.expires_at) = ANY(%(statuses)s::text[])
              AND in_window(s.created_at, s.id, %(created_from)s, %(before_at)s, %(before_id)s)
              AND session_matches(s.id, %(tag)s))
        ELSE (
            SELECT count(*) FROM scope
            JOIN upload_sessions s ON s.project_id = scope.project_id
            WHERE in_window(s.created_at, s.id, %(created_from)s, %(before_at)s, %(before_id)s)
              AND session_matches(s.id, %(tag)s))
        END AS total
),
-- Written out in uploads.sql too: it reads this statement's own scope and totals CTEs, which
-- a SQL function cannot see.
plan AS MATERIALIZED (
    SELECT (SELECT total FROM totals) AS total,
           %(offset)s::bigint < coalesce((SELECT total FROM totals), %(offset)s::bigint + 1)
               AS in_range,
           per_project_walk_is_cheaper(
               coalesce(sum(least(size, %(limit)s::bigint + %(offset)s::bigint)), 0),
               %(limit)s::bigint + %(offset)s::bigint, sum(size),
               (SELECT reltuples FROM pg_class WHERE oid = 'upload_sessions'::regclass)::numeric)
               AS per_project,
           count(*) > 0 OR %(project_id)s::uuid IS NULL AS project_visible
    FROM scope
),
page_keys AS (
    -- One session by id, if it is in scope.
    SELECT s.created_at, s.id FROM upload_sessions s
    WHERE s.id = %(session_id)s::uuid
      AND (s.project_id IN (SELECT project_id FROM scope)) IS TRUE
    UNION ALL
    -- Filtered by status: per project and stored status, from the status index.
    SELECT k.created_at, k.id
    FROM scope CROSS JOIN unnest((SELECT stored_statuses FROM filters)) AS st(status)
    CROSS JOIN LATERAL (
        SELECT s.created_at, s.id FROM upload_sessions s
        WHERE s.project_id = scope.project_id AND s.status = st.status
          AND reported_session_status(s.status, s.expires_at) = ANY(%(statuses)s::text[])
          AND in_window(s.created_at, s.id, %(created_from)s, %(before_at)s, %(before_id)s)
          AND session_matches(s.id, %(tag)s)
        ORDER BY s.created_at DESC, s.id DESC
        LIMIT %(limit)s::bigint + %(offset)s::bigint
    ) AS k
    WHERE (SELECT in_range FROM plan)
      AND %(session_id)s::uuid IS NULL AND %(statuses)s::text[] IS NOT NULL
    UNION ALL
    -- Per project, from each project's newest-first index.
    SELECT k.created_at, k.id
    FROM scope CROSS JOIN LATERAL (
        SELECT s.created_at, s.id FROM upload_sessions s
        WHERE s.project_id = scope.project_id
          AND in_window(s.created_at, s.id, %(created_from)s, %(before_at)s, %(before_id)s)
          AND session_matches(s.id, %(tag)s)
        ORDER BY s.created_at DESC, s.id DESC
        LIMIT %(limit)s::bigint + %(offset)s::bigint
    ) AS k
    WHERE (SELECT in_range AND per_project FROM plan)
      AND %(session_id)s::uuid IS NULL AND %(statuses)s::text[] IS NULL
    UNION ALL
    -- One walk over every project, newest first.
    (SELECT s.created_at, s.id FROM upload_sessions s
     WHERE (SELECT in_range AND NOT per_project FROM plan)
       AND %(session_id)s::uuid IS NULL AND %(statuses)s::text[] IS NULL
       -- IS TRUE keeps the membership test a hashed lookup instead of a join,
       -- so the walk stays in index order and stops at limit+offset.
       AND (s.project_id IN (SELECT project_id FROM scope)) IS TRUE
       AND in_window(s.created_at, s.id, %(created_from)s, %(before_at)s, %(before_id)s)
       AND session_matches(s.id, %(tag)s)
     ORDER BY s.created_at DESC, s.id DESC
     LIMIT %(limit)s::bigint + %(offset)s::bigint)
    ORDER BY created_at DESC, id DESC
    LIMIT %(limit)s::bigint OFFSET %(offset)s::bigint
),
page_rows AS (
    SELECT s.id,
           s.created_at,
           s.expires_at,
           reported_session_status(s.status, s.expires_at) AS status,
           s.project_id,
           (SELECT name FROM projects WHERE id = s.project_id) AS project_name,
           coalesce(r.images, 0) AS images_count,
           coalesce(r.images_delivered, 0) AS images_delivered,
           coalesce(r.images_failed, 0) AS images_failed,
           coalesce(r.destinations, 0) AS destinations_count,
           nullif(s.tags, '{}') AS tags,
           s.long_polling_enabled
    -- A page holds at most 101 rows (the largest pageSize, and one more to tell whether a
    -- cursor walk goes on). Saying so as a constant keeps the generic plan on index
    -- lookups for the page's own rows.
    FROM (SELECT id FROM page_keys LIMIT 101) AS k
    JOIN upload_sessions s ON s.id = k.id
    LEFT JOIN session_rollups r ON r.session_id = s.id
)
SELECT plan.total, plan.project_visible, page_rows.*
FROM plan LEFT JOIN page_rows ON true
ORDER BY page_rows.created_at DESC, page_rows.id DESC;
