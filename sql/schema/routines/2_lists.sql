-- What the list statements (sql/sessions.sql, sql/uploads.sql) share: the scope a walk
-- covers, which way to walk it, and what the filters ask of a row. The small ones are plain
-- expressions, which the planner inlines, so index conditions survive.

-- The caller's projects (only `project` when given), each with its rolled-up numbers of
-- sessions and uploads: how many index entries a walk of that project could read.
CREATE OR REPLACE FUNCTION scope_sizes(caller_user uuid, caller_key bytea, project uuid)
RETURNS TABLE (project_id uuid, sessions bigint, uploads bigint) LANGUAGE sql STABLE AS $$
    SELECT c.project_id, r.sessions, r.uploads
    FROM caller_projects(caller_user, caller_key) AS c
    CROSS JOIN LATERAL (
        SELECT sum(r.sessions)::bigint AS sessions, sum(r.uploads)::bigint AS uploads
        FROM project_rollups r
        WHERE r.project_id = c.project_id
    ) AS r
    WHERE c.project_id = coalesce(project, c.project_id)
$$;

-- Whether a page is found with fewer index entries read per project (each project's newest
-- `wanted` rows: `per_project_entries` in all) than by one walk over every project's rows
-- newest first (`wanted` of the scope's rows turn up every table_rows / scope_rows entries).
CREATE OR REPLACE FUNCTION per_project_walk_is_cheaper(per_project_entries numeric,
                                                       wanted bigint, scope_rows numeric,
                                                       table_rows numeric)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT per_project_entries
           <= wanted * greatest(table_rows, scope_rows) / greatest(scope_rows, 1)
$$;

-- Whether a row at (created_at, id) lies in a walk's window: from created_from (inclusive)
-- to the exclusive bound (before_at, before_id) in list order, NULL meaning open. Written
-- as the (created_at, id) indexes read it.
CREATE OR REPLACE FUNCTION in_window(created_at timestamptz, id uuid, created_from timestamptz,
                                     before_at timestamptz, before_id uuid)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT created_at >= coalesce(created_from, '-infinity')
       AND (created_at, id) < (coalesce(before_at, 'infinity'),
                               coalesce(before_id, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
$$;

-- A session's status as the API reports it: pending or active past its expiry is expired.
CREATE OR REPLACE FUNCTION reported_session_status(stored text, expires_at timestamptz)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN stored IN ('pending', 'active') AND expires_at <= now()
                THEN 'expired' ELSE stored END
$$;

-- The lookups the two functions below ask only when a filter is given.
CREATE OR REPLACE FUNCTION session_has_tag(session uuid, tag text)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM upload_sessions WHERE id = session AND tag = ANY(tags))
$$;

-- Whether a session carries the tag (NULL: any session does). The lookup is asked only
-- when a tag is given: this test is inlined, the lookup (a subquery) is not.
CREATE OR REPLACE FUNCTION session_matches(session uuid, tag text)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT tag IS NULL OR session_has_tag(session, tag)
$$;

CREATE OR REPLACE FUNCTION upload_row_matches(upload uuid, sources text[],
                                              destination_types text[])
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT (sources IS NULL
            OR EXISTS (SELECT 1 FROM uploads WHERE id = upload AND source = ANY(sources)))
       AND (destination_types IS NULL
            OR EXISTS (SELECT 1 FROM deliveries d JOIN destinations t ON t.id = d.destination_id
                       WHERE d.upload_id = upload AND t.type = ANY(destination_types)))
$$;

-- Whether an upload passes the filters that only its own row or its deliveries can answer:
-- source, and a delivery to one of the destination types (NULL filters pass all). As for
-- sessions, the lookups are asked only when a filter is given.
CREATE OR REPLACE FUNCTION upload_matches(upload uuid, sources text[], destination_types text[])
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT (sources IS NULL AND destination_types IS NULL)
        OR upload_row_matches(upload, sources, destination_types)
$$;

-- An upload's status from its delivery counts, as the lists and exports derive it (the rule
-- upload_rollups.status stores, which a generated column must write out itself).
CREATE OR REPLACE FUNCTION upload_status(deliveries bigint, sent bigint, failed bigint)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN deliveries = 0 THEN 'stored_only'
                WHEN sent = deliveries THEN 'delivered'
                WHEN failed = 0 THEN 'pending'
                WHEN sent = 0 THEN 'failed'
                ELSE 'partial' END
$$;
