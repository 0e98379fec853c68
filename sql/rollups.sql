-- name: rollup_drift
-- Every stored rollup figure that differs from a fresh count of the base tables.
SELECT 'project_rollups' AS rollup, project_id::text AS key,
       row_to_json(s)::text AS stored, row_to_json(e)::text AS expected
FROM (SELECT project_id, sum(sessions) AS sessions, sum(uploads) AS uploads,
             sum(uploads_delivered) AS uploads_delivered,
             sum(deliveries_sent) AS deliveries_sent, sum(deliveries_failed) AS deliveries_failed
      FROM project_rollups GROUP BY project_id) AS s
FULL JOIN expected_project_rollups AS e USING (project_id)
WHERE (coalesce(s.sessions, 0), coalesce(s.uploads, 0), coalesce(s.uploads_delivered, 0),
       coalesce(s.deliveries_sent, 0), coalesce(s.deliveries_failed, 0))
      IS DISTINCT FROM
      (coalesce(e.sessions, 0), coalesce(e.uploads, 0), coalesce(e.uploads_delivered, 0),
       coalesce(e.deliveries_sent, 0), coalesce(e.deliveries_failed, 0))
UNION ALL
SELECT 'project_month_rollups', project_id::text || ' ' || month::text,
       row_to_json(s)::text, row_to_json(e)::text
FROM (SELECT project_id, month, sum(sessions) AS sessions
      FROM project_month_rollups GROUP BY project_id, month) AS s
FULL JOIN expected_project_month_rollups AS e USING (project_id, month)
WHERE coalesce(s.sessions, 0) <> coalesce(e.sessions, 0)
UNION ALL
SELECT 'project_day_rollups', project_id::text || ' ' || day::text,
       row_to_json(s)::text, row_to_json(e)::text
FROM (SELECT project_id, day, sum(uploads) AS uploads
      FROM project_day_rollups GROUP BY project_id, day) AS s
FULL JOIN expected_project_day_rollups AS e USING (project_id, day)
WHERE coalesce(s.uploads, 0) <> coalesce(e.uploads, 0)
UNION ALL
SELECT 'project_session_status_rollups', project_id::text || ' ' || status,
       row_to_json(s)::text, row_to_json(e)::text
FROM (SELECT project_id, status, sum(sessions) AS sessions
      FROM project_session_status_rollups GROUP BY project_id, status) AS s
FULL JOIN expected_project_session_status_rollups AS e USING (project_id, status)
WHERE coalesce(s.sessions, 0) <> coalesce(e.sessions, 0)
UNION ALL
SELECT 'project_status_rollups', project_id::text || ' ' || status,
       row_to_json(s)::text, row_to_json(e)::text
FROM (SELECT project_id, status, sum(uploads) AS uploads
      FROM project_status_rollups GROUP BY project_id, status) AS s
FULL JOIN expected_project_status_rollups AS e USING (project_id, status)
WHERE coalesce(s.uploads, 0) <> coalesce(e.uploads, 0)
UNION ALL
SELECT 'session_rollups', session_id::text, row_to_json(s)::text, row_to_json(e)::text
FROM session_rollups AS s
FULL JOIN expected_session_rollups AS e USING (session_id)
WHERE (s.images, s.images_delivered, s.images_failed, s.destinations)
      IS DISTINCT FROM (e.images, e.images_delivered, e.images_failed, e.destinations)
UNION ALL
SELECT 'upload_rollups', upload_id::text, row_to_json(s)::text, row_to_json(e)::text
FROM upload_rollups AS s
FULL JOIN expected_upload_rollups AS e USING (upload_id)
WHERE (s.deliveries, s.sent, s.failed, s.project_id, s.created_at)
      IS DISTINCT FROM (e.deliveries, e.sent, e.failed, e.project_id, e.created_at)
ORDER BY 1, 2;

-- name: rebuild_rollups
-- Recompute every rollup while writers wait (readers go on).
LOCK TABLE projects, upload_sessions, destinations, uploads, deliveries IN SHARE MODE;
SELECT rebuild_rollups();
