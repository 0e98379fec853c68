-- name: list_uploads
-- One page of the caller's uploads, newest first, with delivery counts, breakdown and status.
-- Filters (each NULL when not asked for): project_id, statuses, sources, destination_types,
-- created_from (inclusive); before_at/before_id is an exclusive upper bound in list order
-- (the end of a date window, or a cursor's last row); upload_id picks one upload.
-- Every row carries the matching total (NULL unless with_total); a page past the end is one
-- row with a NULL id. The walk (scope .. page_keys) has the same steps as sessions.sql's:
-- SQL cannot take the table as a parameter without dynamic SQL, which would lose the
-- prepared generic plans, so each statement names its own tables and indexes.
WITH scope AS MATERIALIZED (
    SELECT project_id, uploads AS size
    FROM scope_sizes(%(user_id)s, %(key_hash)s, %(project_id)s)
),
filters AS MATERIALIZED (
    -- The rollups count a project's uploads over all time (by status or not) and per UTC
    -- day (the series' day cells): a window's whole days run from days_from to days_to.
    SELECT %(created_from)s::timestamptz IS NULL AND %(before_at)s::timestamptz IS NULL
               AS all_time,
           %(sources)s::text[] IS NULL AND %(destination_types)s::text[] IS NULL AS every_row,
           coalesce(%(created_from)s::timestamptz, '-infinity') AS created_from,
           CASE WHEN %(created_from)s::timestamptz IS NULL THEN '-infinity'
                ELSE date_trunc('day', %(created_from)s::timestamptz - interval '1 microsecond',
                                'UTC') + interval '1 day' END AS days_from,
           coalesce(date_trunc('day', %(before_at)s::timestamptz, 'UTC'), 'infinity') AS days_to
),
totals AS MATERIALIZED (
    SELECT CASE
            WHEN NOT %(with_total)s::boolean THEN NULL
            WHEN (SELECT all_time AND every_row FROM filters) AND %(statuses)s::text[] IS NULL
                THEN (SELECT coalesce(sum(size), 0)::bigint FROM scope)
            WHEN (SELECT all_time AND every_row FROM filters) THEN (
                SELECT coalesce(sum(r.uploads), 0)::bigint FROM scope
                JOIN project_status_rollups r ON r.project_id = scope.project_id
                WHERE r.status = ANY(%(statuses)s::text[]))
            WHEN (SELECT every_row AND days_from < days_to FROM filters)
                 AND %(statuses)s::text[] IS NULL THEN (
                SELECT coalesce(sum(r.uploads), 0)::bigint FROM scope
                JOIN series_rollups r ON r.project_id = scope.project_id
                WHERE r.dimension = '' AND r.grain = 'day' AND r.minute = 0
                  AND r.at >= (SELECT days_from FROM filters)
                  AND r.at < (SELECT days_to FROM filters)
            ) + (
                -- The part-days at either end.
                SELECT count(*) FROM scope
                JOIN uploads u ON u.project_id = scope.project_id
                WHERE u.created_at >= (SELECT created_from FROM filters)
                  AND u.created_at < (SELECT days_from FROM filters)
            ) + (
                SELECT count(*) FROM scope
                JOIN uploads u ON u.project_id = scope.project_id
                WHERE u.created_at >= (SELECT days_to FROM filters)
                  AND in_window(u.created_at, u.id, NULL, %(before_at)s, %(before_id)s))
            WHEN %(statuses)s::text[] IS NOT NULL THEN (
                SELECT count(*) FROM scope
                JOIN upload_rollups r ON r.project_id = scope.project_id
                WHERE r.status = ANY(%(statuses)s::text[])
                  AND in_window(r.created_at, r.upload_id, %(created_from)s, %(before_at)s,
                                %(before_id)s)
                  AND upload_matches(r.upload_id, %(sources)s, %(destination_types)s))
            ELSE (
                SELECT count(*) FROM scope
                JOIN uploads u ON u.project_id = scope.project_id
                WHERE in_window(u.created_at, u.id, %(created_from)s, %(before_at)s,
                                %(before_id)s)
                  AND upload_matches(u.id, %(sources)s, %(destination_types)s))
            END AS total
),
-- Written out in sessions.sql too: it reads this statement's own scope and totals CTEs, which
-- a SQL function cannot see.
plan AS MATERIALIZED (
    SELECT (SELECT total FROM totals) AS total,
           %(offset)s::bigint < coalesce((SELECT total FROM totals), %(offset)s::bigint + 1)
               AS in_range,
           per_project_walk_is_cheaper(
               coalesce(sum(least(size, %(limit)s::bigint + %(offset)s::bigint)), 0),
               %(limit)s::bigint + %(offset)s::bigint, sum(size),
               (SELECT reltuples FROM pg_class WHERE oid = 'uploads'::regclass)::numeric)
               AS per_project,
           count(*) > 0 OR %(project_id)s::uuid IS NULL AS project_visible
    FROM scope
),
page_keys AS (
    -- One upload by id, if it is in scope.
    SELECT u.created_at, u.id FROM uploads u
    WHERE u.id = %(upload_id)s::uuid
      AND (u.project_id IN (SELECT project_id FROM scope)) IS TRUE
    UNION ALL
    -- Filtered by status: per project and status, from the rollups' status index.
    SELECT k.created_at, k.id
    FROM scope CROSS JOIN unnest(%(statuses)s::text[]) AS st(status)
    CROSS JOIN LATERAL (
        SELECT r.created_at, r.upload_id AS id FROM upload_rollups r
        WHERE r.project_id = scope.project_id AND r.status = st.status
          AND in_window(r.created_at, r.upload_id, %(created_from)s, %(before_at)s,
                        %(before_id)s)
          AND upload_matches(r.upload_id, %(sources)s, %(destination_types)s)
        ORDER BY r.created_at DESC, r.upload_id DESC
        LIMIT %(limit)s::bigint + %(offset)s::bigint
    ) AS k
    WHERE (SELECT in_range FROM plan) AND %(upload_id)s::uuid IS NULL
    UNION ALL
    -- Per project, from each project's newest-first index.
    SELECT k.created_at, k.id
    FROM scope CROSS JOIN LATERAL (
        SELECT u.created_at, u.id FROM uploads u
        WHERE u.project_id = scope.project_id
          AND in_window(u.created_at, u.id, %(created_from)s, %(before_at)s, %(before_id)s)
          AND upload_matches(u.id, %(sources)s, %(destination_types)s)
        ORDER BY u.created_at DESC, u.id DESC
        LIMIT %(limit)s::bigint + %(offset)s::bigint
    ) AS k
    WHERE (SELECT in_range AND per_project FROM plan)
      AND %(upload_id)s::uuid IS NULL AND %(statuses)s::text[] IS NULL
    UNION ALL
    -- One walk over every project, newest first.
    (SELECT u.created_at, u.id FROM uploads u
     WHERE (SELECT in_range AND NOT per_project FROM plan)
       AND %(upload_id)s::uuid IS NULL AND %(statuses)s::text[] IS NULL
       -- IS TRUE keeps the membership test a hashed lookup instead of a join,
       -- so the walk stays in index order and stops at limit+offset.
       AND (u.project_id IN (SELECT project_id FROM scope)) IS TRUE
       AND in_window(u.created_at, u.id, %(created_from)s, %(before_at)s, %(before_id)s)
       AND upload_matches(u.id, %(sources)s, %(destination_types)s)
     ORDER BY u.created_at DESC, u.id DESC
     LIMIT %(limit)s::bigint + %(offset)s::bigint)
    ORDER BY created_at DESC, id DESC
    LIMIT %(limit)s::bigint OFFSET %(offset)s::bigint
),
page AS (
    -- A page holds at most 101 rows (the largest pageSize, and one more to tell whether a
    -- cursor walk goes on). Saying so as a constant keeps the generic plan on index
    -- lookups for the page's own rows and deliveries.
    SELECT u.*
    FROM (SELECT id FROM page_keys LIMIT 101) AS k
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
           upload_status(coalesce(pu.total, 0), pu.sent, pu.failed) AS status,
           -- A single upload is answered with its deliveries.
           CASE WHEN %(upload_id)s::uuid IS NOT NULL THEN (
               SELECT coalesce(json_agg(json_build_object(
                          'destinationId', dl.destination_id, 'type', dst.type,
                          'status', dl.status) ORDER BY dst.type COLLATE "C", dl.destination_id),
                      '[]'::json)
               FROM deliveries dl JOIN destinations dst ON dst.id = dl.destination_id
               WHERE dl.upload_id = p.id)
           END AS deliveries
    FROM page p
    LEFT JOIN per_upload pu ON pu.upload_id = p.id
)
SELECT plan.total, plan.project_visible, page_rows.*
FROM plan LEFT JOIN page_rows ON true
ORDER BY page_rows.created_at DESC, page_rows.id DESC;
