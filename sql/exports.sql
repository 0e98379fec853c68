-- name: export_settings
-- The export transaction's own settings: its time limit instead of the API's statement
-- timeout, and plans that stream. Costed for its whole result, an export's statement would
-- hash its joins and sort at the end, holding the first row back until the last is read;
-- without hashing, and with sorting as the last resort (a small scope still needs one), it
-- merges the index walks in their order and sends each row as it is made.
SELECT set_config('statement_timeout', %(timeout)s, true),
       set_config('enable_hashjoin', 'off', true),
       set_config('enable_hashagg', 'off', true),
       set_config('enable_sort', 'off', true);

-- name: export_scope
-- What an export needs to know before it starts: whether a projectId filter names a project
-- in the caller's scope, the scope's projects (which the export statement then reads), and
-- how many sessions and uploads they hold (which walk it takes). Read in the export's own
-- snapshot, with the caller check.
SELECT count(*) > 0 OR %(project_id)s::uuid IS NULL AS project_visible,
       coalesce(array_agg(project_id), '{}') AS projects,
       coalesce(sum(sessions), 0)::bigint AS sessions,
       coalesce(sum(uploads), 0)::bigint AS uploads
FROM scope_sizes(%(user_id)s, %(key_hash)s, %(project_id)s);

-- name: export_uploads
-- Every upload of the caller's scope under the list filters, newest first, each as one line
-- of CSV or NDJSON (format), exactly as the JSON lists and schemas/rows.py's UploadRow give
-- it. One statement, streamed as it runs: with walk 'global' the scope's uploads come from
-- the newest-first index over all projects and their deliveries from the matching index on
-- deliveries, merged in that order, so nothing is sorted or looked up per upload (a scope
-- holding a large share of the rows); with 'per_project' from each project's index, then
-- sorted (a small scope). The parameters are bound client-side (COPY takes none), so the
-- walk not taken is planned away.
WITH scope AS (
    SELECT unnest(%(projects)s::uuid[]) AS project_id
),
scope_uploads AS (
    (SELECT u.* FROM uploads u
     WHERE %(walk)s = 'global'
       -- A constant array of more than a few is tested by hashing, in index order.
       AND u.project_id = ANY(%(projects)s::uuid[])
       -- One project (an API key's): its own index, in the same order, reads no other's.
       AND (%(only_project)s::uuid IS NULL OR u.project_id = %(only_project)s::uuid)
       AND in_window(u.created_at, u.id, %(created_from)s, %(before_at)s, %(before_id)s)
     ORDER BY u.created_at DESC, u.id DESC)
    UNION ALL
    SELECT u.* FROM scope JOIN uploads u ON u.project_id = scope.project_id
    WHERE %(walk)s = 'per_project'
      AND in_window(u.created_at, u.id, %(created_from)s, %(before_at)s, %(before_id)s)
),
scope_deliveries AS (
    (SELECT d.upload_created_at, d.upload_id, d.destination_type, d.status FROM deliveries d
     WHERE %(walk)s = 'global'
       AND d.project_id = ANY(%(projects)s::uuid[])
       AND in_window(d.upload_created_at, d.upload_id, %(created_from)s, %(before_at)s,
                     %(before_id)s)
     ORDER BY d.upload_created_at DESC, d.upload_id DESC, d.destination_type COLLATE "C")
    UNION ALL
    SELECT d.upload_created_at, d.upload_id, d.destination_type, d.status
    FROM scope JOIN deliveries d ON d.project_id = scope.project_id
    WHERE %(walk)s = 'per_project'
      AND in_window(d.upload_created_at, d.upload_id, %(created_from)s, %(before_at)s,
                    %(before_id)s)
),
per_type AS (
    SELECT upload_created_at, upload_id, destination_type COLLATE "C" AS type,
           count(*) AS deliveries,
           count(*) FILTER (WHERE status = 'sent') AS sent,
           count(*) FILTER (WHERE status = 'failed') AS failed
    FROM scope_deliveries
    GROUP BY 1, 2, 3
    ORDER BY 1 DESC, 2 DESC, 3
),
per_upload AS (
    -- Types match ^[a-z][a-z0-9_]*$ (a CHECK on destinations): never quoted or escaped.
    SELECT upload_created_at, upload_id,
           sum(deliveries)::bigint AS deliveries,
           sum(sent)::bigint AS sent,
           sum(failed)::bigint AS failed,
           string_agg(CASE WHEN %(format)s = 'csv' THEN type || ':' || deliveries
                           ELSE '{"type":"' || type || '","count":' || deliveries || '}' END,
                      CASE WHEN %(format)s = 'csv' THEN ';' ELSE ',' END
                      ORDER BY type) AS breakdown,
           bool_or(type = ANY(%(destination_types)s::text[])) AS has_type
    FROM per_type
    GROUP BY 1, 2
    ORDER BY 1 DESC, 2 DESC
),
exported AS (
    SELECT u.*,
           p.name AS project_name,
           coalesce(d.deliveries, 0) AS deliveries,
           coalesce(d.sent, 0) AS sent,
           coalesce(d.failed, 0) AS failed,
           d.breakdown,
           upload_status(coalesce(d.deliveries, 0), d.sent, d.failed) AS status
    FROM scope_uploads u
    LEFT JOIN per_upload d ON d.upload_created_at = u.created_at AND d.upload_id = u.id
    -- A lateral lookup (an index probe per row into a small table) keeps the walk's order.
    CROSS JOIN LATERAL (SELECT name FROM projects WHERE id = u.project_id) AS p
    WHERE (%(sources)s::text[] IS NULL OR u.source = ANY(%(sources)s::text[]))
      AND (%(destination_types)s::text[] IS NULL OR d.has_type)
)
SELECT CASE WHEN %(format)s = 'csv' THEN
    concat_ws(',', id, csv_field(filename), size_bytes, csv_field(mime_type), source,
              is_encrypted::text, api_timestamp(created_at), session_id, project_id,
              csv_field(project_name), deliveries, sent, failed, coalesce(breakdown, ''),
              status) || E'\r\n'
ELSE
    '{"id":"' || id || '","filename":' || to_json(filename) || ',"sizeBytes":' || size_bytes
    || ',"mimeType":' || to_json(mime_type) || ',"source":' || to_json(source)
    || ',"isEncrypted":' || is_encrypted::text || ',"createdAt":"' || api_timestamp(created_at)
    || '","sessionId":"' || session_id || '","projectId":"' || project_id
    || '","projectName":' || to_json(project_name) || ',"destinationsTotal":' || deliveries
    || ',"destinationsDelivered":' || sent || ',"destinationsFailed":' || failed
    || ',"destinationsBreakdown":[' || coalesce(breakdown, '') || '],"status":"' || status
    || E'"}\n'
END AS line
FROM exported
WHERE %(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s::text[])
ORDER BY created_at DESC, id DESC;

-- name: export_sessions
-- Every session of the caller's scope under the list filters, newest first, each as one
-- line of CSV or NDJSON (format), exactly as the JSON lists and schemas/rows.py's SessionRow
-- give it; walks as export_uploads' (written out again: a statement cannot take its table as
-- a parameter, as in sessions.sql and uploads.sql).
WITH scope AS (
    SELECT unnest(%(projects)s::uuid[]) AS project_id
),
scope_sessions AS (
    (SELECT s.* FROM upload_sessions s
     WHERE %(walk)s = 'global'
       AND s.project_id = ANY(%(projects)s::uuid[])
       AND (%(only_project)s::uuid IS NULL OR s.project_id = %(only_project)s::uuid)
       AND in_window(s.created_at, s.id, %(created_from)s, %(before_at)s, %(before_id)s)
     ORDER BY s.created_at DESC, s.id DESC)
    UNION ALL
    SELECT s.* FROM scope JOIN upload_sessions s ON s.project_id = scope.project_id
    WHERE %(walk)s = 'per_project'
      AND in_window(s.created_at, s.id, %(created_from)s, %(before_at)s, %(before_id)s)
),
exported AS (
    SELECT s.id, s.created_at, s.expires_at,
           reported_session_status(s.status, s.expires_at) AS status,
           s.project_id,
           p.name AS project_name,
           coalesce(r.images, 0) AS images,
           coalesce(r.images_delivered, 0) AS images_delivered,
           coalesce(r.images_failed, 0) AS images_failed,
           coalesce(r.destinations, 0) AS destinations,
           nullif(s.tags, '{}') AS tags,
           s.long_polling_enabled
    FROM scope_sessions s
    LEFT JOIN session_rollups r ON r.session_id = s.id
    CROSS JOIN LATERAL (SELECT name FROM projects WHERE id = s.project_id) AS p
    WHERE session_matches(s.id, %(tag)s)
)
SELECT CASE WHEN %(format)s = 'csv' THEN
    concat_ws(',', id, api_timestamp(created_at), api_timestamp(expires_at), status, project_id,
              csv_field(project_name), images, images_delivered, images_failed, destinations,
              coalesce(csv_field(array_to_string(tags, ';')), ''), long_polling_enabled::text)
    || E'\r\n'
ELSE
    '{"id":"' || id || '","createdAt":"' || api_timestamp(created_at) || '","expiresAt":"'
    || api_timestamp(expires_at) || '","status":"' || status || '","projectId":"' || project_id
    || '","projectName":' || to_json(project_name) || ',"imagesCount":' || images
    || ',"imagesDelivered":' || images_delivered || ',"imagesFailed":' || images_failed
    || ',"destinationsCount":' || destinations || ',"tags":' || coalesce(to_json(tags)::text, 'null')
    || ',"longPollingEnabled":' || long_polling_enabled::text || E'}\n'
END AS line
FROM exported
WHERE %(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s::text[])
ORDER BY created_at DESC, id DESC;
