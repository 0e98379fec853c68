-- What every rollup should hold, and the checks and repairs built on that. Each rollup
-- table <name> has a view expected_<name> that counts the same figures afresh from the base
-- tables; rebuilding, filling and reconciling all read those views (by that naming rule),
-- so they cannot disagree about what "right" is, and a new rollup needs only its table,
-- its trigger and its view.

CREATE OR REPLACE VIEW expected_upload_rollups AS
SELECT u.id AS upload_id, count(d.upload_id) AS deliveries,
       count(*) FILTER (WHERE d.status = 'sent') AS sent,
       count(*) FILTER (WHERE d.status = 'failed') AS failed,
       u.project_id, u.created_at, u.size_bytes, u.source
FROM uploads u LEFT JOIN deliveries d ON d.upload_id = u.id
GROUP BY u.id;

CREATE OR REPLACE VIEW expected_session_rollups AS
SELECT s.id AS session_id, coalesce(i.images, 0) AS images,
       coalesce(i.delivered, 0) AS images_delivered, coalesce(i.failed, 0) AS images_failed,
       coalesce(t.destinations, 0) AS destinations
FROM upload_sessions s
LEFT JOIN (SELECT u.session_id, count(*) AS images,
                  count(*) FILTER (WHERE r.sent > 0) AS delivered,
                  count(*) FILTER (WHERE r.failed > 0) AS failed
           FROM uploads u JOIN expected_upload_rollups r ON r.upload_id = u.id
           GROUP BY u.session_id) AS i ON i.session_id = s.id
LEFT JOIN (SELECT session_id, count(*) AS destinations FROM destinations GROUP BY session_id)
    AS t ON t.session_id = s.id;

CREATE OR REPLACE VIEW expected_project_rollups AS
SELECT p.id AS project_id, coalesce(s.sessions, 0) AS sessions,
       coalesce(u.uploads, 0) AS uploads, coalesce(u.delivered, 0) AS uploads_delivered,
       coalesce(d.sent, 0) AS deliveries_sent, coalesce(d.failed, 0) AS deliveries_failed
FROM projects p
LEFT JOIN (SELECT project_id, count(*) AS sessions FROM upload_sessions GROUP BY 1) AS s
    ON s.project_id = p.id
LEFT JOIN (SELECT u.project_id, count(*) AS uploads,
                  count(*) FILTER (WHERE r.sent > 0) AS delivered
           FROM uploads u JOIN expected_upload_rollups r ON r.upload_id = u.id
           GROUP BY 1) AS u ON u.project_id = p.id
LEFT JOIN (SELECT project_id, count(*) FILTER (WHERE status = 'sent') AS sent,
                  count(*) FILTER (WHERE status = 'failed') AS failed
           FROM deliveries GROUP BY 1) AS d ON d.project_id = p.id;

-- upload_rollups counted (which reconcile checks against the base tables in turn).
CREATE OR REPLACE VIEW expected_project_status_rollups AS
SELECT project_id, status, count(*) AS uploads FROM upload_rollups GROUP BY 1, 2;

CREATE OR REPLACE VIEW expected_project_session_status_rollups AS
SELECT project_id, status, count(*) AS sessions FROM upload_sessions GROUP BY 1, 2;

-- Sessions, uploads (from their rollup rows, which reconcile checks in turn) and
-- deliveries by type (by their upload's createdAt and their destination's type, not the
-- copies they carry, so a wrong copy shows as drift), each in its finest cell first (every
-- coarser cell holds whole finer ones), then in the cells of every grain its dimension
-- keeps.
CREATE OR REPLACE VIEW expected_series_rollups AS
WITH changes AS (
    SELECT (session_series(s, 1)).* FROM upload_sessions s
    UNION ALL
    SELECT (upload_series(r, 1)).* FROM upload_rollups r
    UNION ALL
    SELECT (delivery_series(u.project_id, t.type, u.created_at, d.status, 1)).*
    FROM deliveries d
    JOIN uploads u ON u.id = d.upload_id
    JOIN destinations t ON t.id = d.destination_id
),
finest AS (
    SELECT project_id, dimension, value,
           series_cell((series_grains(dimension))[cardinality(series_grains(dimension))],
                       moment) AS moment,
           sum(sessions) AS sessions, sum(uploads) AS uploads, sum(bytes) AS bytes,
           sum(sent) AS sent, sum(failed) AS failed, sum(pending) AS pending
    FROM changes
    GROUP BY 1, 2, 3, 4
)
SELECT f.project_id, f.dimension, f.value, g.grain,
       series_minute(series_cell(g.grain, f.moment)) AS minute,
       series_cell(g.grain, f.moment) AS at,
       sum(f.sessions) AS sessions, sum(f.uploads) AS uploads, sum(f.bytes) AS bytes,
       sum(f.sent) AS sent, sum(f.failed) AS failed, sum(f.pending) AS pending
FROM finest f
CROSS JOIN unnest(series_grains(f.dimension)) AS g(grain)
GROUP BY 1, 2, 3, 4, 5, 6;

-- Every rollup, in the order a rebuild refills them (project_status_rollups and
-- series_rollups count upload_rollups), and the base tables they count.
CREATE OR REPLACE FUNCTION rollup_tables() RETURNS regclass[] LANGUAGE sql STABLE AS $$
    SELECT '{upload_rollups, session_rollups, project_rollups, project_status_rollups,
             project_session_status_rollups, series_rollups}'::regclass[]
$$;

CREATE OR REPLACE FUNCTION rollup_sources() RETURNS regclass[] LANGUAGE sql STABLE AS $$
    SELECT '{projects, upload_sessions, destinations, uploads, deliveries}'::regclass[]
$$;

CREATE OR REPLACE FUNCTION expected_view(rollup regclass) RETURNS regclass
LANGUAGE sql STABLE AS $$
    SELECT format('expected_%s', relname)::regclass FROM pg_class WHERE oid = rollup
$$;

-- A table's or view's column names, quoted, in order.
CREATE OR REPLACE FUNCTION relation_columns(relation regclass) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT array_agg(quote_ident(attname) ORDER BY attnum) FROM pg_attribute
    WHERE attrelid = relation AND attnum > 0 AND NOT attisdropped
$$;

-- What tells a rollup's rows apart: its primary key without the slot, quoted.
CREATE OR REPLACE FUNCTION rollup_key(rollup regclass) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT array_agg(quote_ident(a.attname) ORDER BY array_position(i.indkey::int2[], a.attnum))
    FROM pg_index i
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
    WHERE i.indrelid = rollup AND i.indisprimary AND a.attname <> 'slot'
$$;

-- Writers wait while rollups are recounted (readers go on); a rollup refilled from its
-- view takes the view's columns (a slot column defaults to 0; generated ones follow), in
-- key order, which keeps a large refill's index writes sequential.
CREATE OR REPLACE FUNCTION refill_rollup(rollup regclass) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    columns text := array_to_string(relation_columns(expected_view(rollup)), ', ');
BEGIN
    EXECUTE format('LOCK TABLE %s IN SHARE MODE', array_to_string(rollup_sources(), ', '));
    EXECUTE format('DELETE FROM %s', rollup);
    EXECUTE format('INSERT INTO %s (%s) SELECT %s FROM %s ORDER BY %s', rollup, columns,
                   columns, expected_view(rollup), array_to_string(rollup_key(rollup), ', '));
END
$$;

CREATE OR REPLACE FUNCTION rebuild_rollups() RETURNS void LANGUAGE sql AS $$
    SELECT refill_rollup(rollup) FROM unnest(rollup_tables()) WITH ORDINALITY AS t(rollup, n)
    ORDER BY n
$$;

-- After a migration: fill the rollups that are empty (new ones; on a fresh database
-- all, at no cost). A rollup with rows is left to reconcile.
CREATE OR REPLACE FUNCTION fill_empty_rollups() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    rollup regclass;
    filled boolean;
BEGIN
    FOREACH rollup IN ARRAY rollup_tables() LOOP
        EXECUTE format('SELECT EXISTS (SELECT FROM %s)', rollup) INTO filled;
        IF NOT filled THEN
            PERFORM refill_rollup(rollup);
        END IF;
    END LOOP;
END
$$;

-- "s.a, s.b" (or "coalesce(s.a, 0), …" where a missing row means zeros).
CREATE OR REPLACE FUNCTION figure_list(alias text, figures text[], zero_when_missing boolean)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT string_agg(format(CASE WHEN zero_when_missing THEN 'coalesce(%s.%s, 0)'
                                  ELSE '%s.%s' END, alias, f), ', ')
    FROM unnest(figures) f
$$;

-- Every stored rollup figure that differs from its expected view. Rows match by the
-- rollup's primary key without its slot; slots are summed, and a missing slotted row
-- counts as zeros (a missing row of a rollup without slots is drift).
CREATE OR REPLACE FUNCTION rollup_drift()
RETURNS TABLE (rollup text, key text, stored text, expected text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    rollup_table regclass;
    keys text;         -- "project_id, status"
    figures text[];    -- the expected view's other columns
    slotted boolean;
    stored_rows text;  -- the rollup's rows, slots summed
BEGIN
    FOREACH rollup_table IN ARRAY rollup_tables() LOOP
        keys := array_to_string(rollup_key(rollup_table), ', ');
        figures := ARRAY(SELECT f FROM unnest(relation_columns(expected_view(rollup_table))) f
                         WHERE f <> ALL(rollup_key(rollup_table)));
        slotted := 'slot' = ANY(relation_columns(rollup_table));
        stored_rows := CASE WHEN slotted
            THEN format('(SELECT %s, %s FROM %s GROUP BY %s)', keys,
                        (SELECT string_agg(format('sum(%1$s) AS %1$s', f), ', ')
                         FROM unnest(figures) f), rollup_table, keys)
            ELSE rollup_table::text END;
        RETURN QUERY EXECUTE format(
            'SELECT %L::text, concat_ws('' '', %s), row_to_json(s)::text, row_to_json(e)::text
             FROM %s AS s FULL JOIN %s AS e USING (%s)
             WHERE (%s) IS DISTINCT FROM (%s)',
            rollup_table, keys, stored_rows, expected_view(rollup_table), keys,
            figure_list('s', figures, slotted), figure_list('e', figures, slotted));
    END LOOP;
END
$$;

-- TRUNCATE fires no row triggers: recount everything.
CREATE OR REPLACE FUNCTION rollup_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM rebuild_rollups();
    RETURN NULL;
END
$$;
DO $$
DECLARE
    source regclass;
BEGIN
    FOREACH source IN ARRAY rollup_sources() LOOP
        EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER TRUNCATE ON %s
                        FOR EACH STATEMENT EXECUTE FUNCTION rollup_truncated()',
                       source::text || '_truncated', source);
    END LOOP;
END
$$;
