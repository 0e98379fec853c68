-- Rollups: counts kept by triggers in the writer's own transaction, so readers pay for the
-- size of their scope, not of its history, and a snapshot sees rows and counts agree.
-- Per-project rows are split into slots by writer backend, so concurrent writers to one
-- project do not queue on one hot row; readers sum the slots. Rollup tables have no foreign
-- keys: a cascade may delete a parent before its children's triggers run, and a leftover
-- zero row is harmless. 4_rollup_checks.sql says what each should hold; `flask reconcile`
-- compares and repairs.

CREATE OR REPLACE FUNCTION rollup_slot() RETURNS smallint LANGUAGE sql STABLE AS
$$ SELECT (pg_backend_pid() % 8)::smallint $$;

-- One upsert per rollup table: each adds signed counts to the writer's slot of one row.

CREATE OR REPLACE FUNCTION bump_project(project uuid, sessions bigint DEFAULT 0,
                                        uploads bigint DEFAULT 0,
                                        uploads_delivered bigint DEFAULT 0,
                                        sent bigint DEFAULT 0, failed bigint DEFAULT 0)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO project_rollups AS r (project_id, slot, sessions, uploads, uploads_delivered,
                                      deliveries_sent, deliveries_failed)
    VALUES (project, rollup_slot(), sessions, uploads, uploads_delivered, sent, failed)
    ON CONFLICT (project_id, slot) DO UPDATE SET
        sessions = r.sessions + EXCLUDED.sessions,
        uploads = r.uploads + EXCLUDED.uploads,
        uploads_delivered = r.uploads_delivered + EXCLUDED.uploads_delivered,
        deliveries_sent = r.deliveries_sent + EXCLUDED.deliveries_sent,
        deliveries_failed = r.deliveries_failed + EXCLUDED.deliveries_failed
$$;

CREATE OR REPLACE FUNCTION bump_session_status(project uuid, status text, sessions bigint)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO project_session_status_rollups AS r (project_id, status, slot, sessions)
    VALUES (project, status, rollup_slot(), sessions)
    ON CONFLICT (project_id, status, slot) DO UPDATE SET sessions = r.sessions + EXCLUDED.sessions
$$;

-- Changes grouped first, so a statement over millions of rows passes a few per project.
CREATE OR REPLACE FUNCTION bump_project_statuses(changes status_change[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO project_status_rollups AS r (project_id, status, slot, uploads)
    SELECT project_id, status, rollup_slot(), sum(change)
    FROM unnest(changes)
    GROUP BY project_id, status
    HAVING sum(change) <> 0
    ON CONFLICT (project_id, status, slot) DO UPDATE SET uploads = r.uploads + EXCLUDED.uploads
$$;

CREATE OR REPLACE FUNCTION bump_session(session uuid, images bigint DEFAULT 0,
                                        delivered bigint DEFAULT 0, failed bigint DEFAULT 0,
                                        destinations bigint DEFAULT 0)
RETURNS void LANGUAGE sql AS $$
    UPDATE session_rollups
    SET images = images + bump_session.images,
        images_delivered = images_delivered + delivered,
        images_failed = images_failed + bump_session.failed,
        destinations = session_rollups.destinations + bump_session.destinations
    WHERE session_id = session
$$;

-- Usage over time (series_rollups): every change is counted in the UTC cells of each grain
-- its dimension keeps, a few rows per change, summed per cell before they are written.

CREATE OR REPLACE FUNCTION series_grains(dimension text) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN dimension = '' THEN '{month,week,day,6h,hour,quarter}'::text[]
                ELSE '{month,week,day}'::text[] END
$$;

-- The first instant of the UTC cell of `grain` that holds `moment`. Cells are counted
-- from 0001-01-01, a Monday, so weeks start on Monday (and date_bin never meets an origin
-- after the moment, where PostgreSQL misplaces exact boundaries).
CREATE OR REPLACE FUNCTION series_cell(grain text, moment timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE grain
        WHEN 'month' THEN date_trunc('month', moment AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
        ELSE date_bin(CASE grain WHEN 'week' THEN interval '7 days'
                                 WHEN 'day' THEN interval '1 day'
                                 WHEN '6h' THEN interval '6 hours'
                                 WHEN 'hour' THEN interval '1 hour'
                                 WHEN 'quarter' THEN interval '15 minutes' END,
                      moment, '0001-01-01 00:00+00')
    END
$$;

-- The minute of the UTC day a cell starts at.
CREATE OR REPLACE FUNCTION series_minute(cell timestamptz) RETURNS smallint
LANGUAGE sql IMMUTABLE AS $$
    SELECT (extract(epoch FROM cell - date_bin('1 day', cell, '0001-01-01 00:00+00')) / 60)::smallint
$$;

CREATE OR REPLACE FUNCTION bump_series(changes series_change[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO series_rollups AS r (project_id, dimension, value, grain, minute, at, slot,
                                     sessions, uploads, bytes, sent, failed, pending)
    SELECT c.project_id, c.dimension, c.value, g.grain,
           series_minute(series_cell(g.grain, c.moment)), series_cell(g.grain, c.moment),
           rollup_slot(), sum(c.sessions), sum(c.uploads), sum(c.bytes), sum(c.sent),
           sum(c.failed), sum(c.pending)
    FROM unnest(changes) AS c
    CROSS JOIN unnest(series_grains(c.dimension)) AS g(grain)
    GROUP BY 1, 2, 3, 4, 5, 6
    HAVING (sum(c.sessions), sum(c.uploads), sum(c.bytes), sum(c.sent), sum(c.failed),
            sum(c.pending)) <> (0, 0, 0, 0, 0, 0)
    ON CONFLICT (project_id, dimension, grain, minute, at, value, slot) DO UPDATE SET
        sessions = r.sessions + EXCLUDED.sessions,
        uploads = r.uploads + EXCLUDED.uploads,
        bytes = r.bytes + EXCLUDED.bytes,
        sent = r.sent + EXCLUDED.sent,
        failed = r.failed + EXCLUDED.failed,
        pending = r.pending + EXCLUDED.pending
$$;

-- What an upload's rollup row counts in the series (sign 1) or out (-1): the upload, its
-- bytes and its deliveries' results, over all uploads, by status and by source.
CREATE OR REPLACE FUNCTION upload_series(upload upload_rollups, sign int)
RETURNS SETOF series_change LANGUAGE sql IMMUTABLE AS $$
    SELECT ROW(upload.project_id, d.dimension, d.value, upload.created_at, 0, sign,
               sign * upload.size_bytes, sign * upload.sent, sign * upload.failed,
               sign * (upload.deliveries - upload.sent - upload.failed))::series_change
    FROM (VALUES ('', ''), ('status', upload.status), ('source', upload.source))
        AS d(dimension, value)
$$;

CREATE OR REPLACE FUNCTION session_series(session upload_sessions, sign int)
RETURNS series_change LANGUAGE sql IMMUTABLE AS $$
    SELECT ROW(session.project_id, '', '', session.created_at, sign, 0, 0, 0, 0, 0)::series_change
$$;

-- One delivery, by its destination's type, in the cell of its upload.
CREATE OR REPLACE FUNCTION delivery_series(project uuid, type text, moment timestamptz,
                                           status text, sign int)
RETURNS series_change LANGUAGE sql IMMUTABLE AS $$
    SELECT ROW(project, 'type', type, moment, 0, 0, 0, sign * (status = 'sent')::int,
               sign * (status = 'failed')::int, sign * (status = 'pending')::int)::series_change
$$;

-- Rows arriving or leaving in bulk (a load, a cascade, a clean-up) are counted per
-- statement, over its transition tables: each project, session, status and series cell
-- they touch is bumped once. A row updated in one transaction again and again is a chain
-- of versions every later update walks, so a bump per row would cost the square of them.

-- Sessions arriving (sign 1) or leaving (-1): their projects' totals, their series cells
-- and their stored statuses.
CREATE OR REPLACE FUNCTION count_sessions(sessions upload_sessions[], sign int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    g record;
BEGIN
    FOR g IN SELECT project_id, count(*) AS n FROM unnest(sessions) GROUP BY 1 LOOP
        PERFORM bump_project(g.project_id, sessions => sign * g.n);
    END LOOP;
    FOR g IN SELECT project_id, status, count(*) AS n FROM unnest(sessions) GROUP BY 1, 2 LOOP
        PERFORM bump_session_status(g.project_id, g.status, sign * g.n);
    END LOOP;
    PERFORM bump_series(ARRAY(SELECT session_series(s, sign) FROM unnest(sessions) AS s));
END
$$;

CREATE OR REPLACE FUNCTION rollup_session_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM count_sessions(ARRAY(SELECT n::upload_sessions FROM new_rows AS n), 1);
        INSERT INTO session_rollups (session_id) SELECT id FROM new_rows ON CONFLICT DO NOTHING;
    ELSE
        PERFORM count_sessions(ARRAY(SELECT o::upload_sessions FROM old_rows AS o), -1);
        DELETE FROM session_rollups r USING old_rows o WHERE r.session_id = o.id;
    END IF;
    RETURN NULL;
END
$$;
-- Two triggers per table, like the uploads' below: PostgreSQL allows transition tables only
-- on a trigger of one event.
CREATE OR REPLACE TRIGGER upload_sessions_inserted_rollup AFTER INSERT ON upload_sessions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_session_rows();
CREATE OR REPLACE TRIGGER upload_sessions_deleted_rollup AFTER DELETE ON upload_sessions
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_session_rows();

-- A session updated (rare, one at a time) leaves its counts with its old row and arrives
-- with its new one; its own rollup row keeps its counts, under its new id.
CREATE OR REPLACE FUNCTION rollup_upload_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (OLD.project_id, OLD.created_at) = (NEW.project_id, NEW.created_at) THEN
        -- the stored status alone changed (the common update): only its counts move
        PERFORM bump_session_status(OLD.project_id, OLD.status, -1);
        PERFORM bump_session_status(NEW.project_id, NEW.status, 1);
    ELSE
        PERFORM count_sessions(ARRAY[OLD], -1);
        PERFORM count_sessions(ARRAY[NEW], 1);
    END IF;
    IF OLD.id <> NEW.id THEN
        UPDATE session_rollups SET session_id = NEW.id WHERE session_id = OLD.id;
    END IF;
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER upload_sessions_rollup
    AFTER UPDATE OF id, project_id, created_at, status ON upload_sessions
    FOR EACH ROW EXECUTE FUNCTION rollup_upload_sessions();

-- Destinations count in their session's rollup row; a destination changing type takes
-- its deliveries' copies of it along (and so their type counts, by their own trigger).
CREATE OR REPLACE FUNCTION rollup_destinations() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.type <> NEW.type THEN
        UPDATE deliveries SET destination_type = NEW.type WHERE destination_id = NEW.id;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') AND OLD.session_id IS DISTINCT FROM NEW.session_id THEN
        PERFORM bump_session(OLD.session_id, destinations => -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND OLD.session_id IS DISTINCT FROM NEW.session_id THEN
        PERFORM bump_session(NEW.session_id, destinations => 1);
    END IF;
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER destinations_rollup
    AFTER INSERT OR DELETE OR UPDATE OF session_id, type ON destinations
    FOR EACH ROW EXECUTE FUNCTION rollup_destinations();

-- Uploads: each has its own upload_rollups row (its delivery counts, hence its status, and
-- what the series count of it). Uploads arriving (sign 1) or leaving (-1) count in or out
-- of their projects' totals, their sessions' images, their projects' status counts and
-- their series cells, with the figures their rollup rows (`counts`) hold. An upload whose
-- row is already gone still counts as an upload and an image.
CREATE OR REPLACE FUNCTION count_uploads(changed uploads[], counts upload_rollups[], sign int)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    g record;
BEGIN
    FOR g IN
        SELECT u.project_id, count(*) AS n, count(*) FILTER (WHERE r.sent > 0) AS delivered,
               coalesce(sum(r.sent), 0) AS sent, coalesce(sum(r.failed), 0) AS failed
        FROM unnest(changed) AS u LEFT JOIN unnest(counts) AS r ON r.upload_id = u.id
        GROUP BY 1
    LOOP
        PERFORM bump_project(g.project_id, uploads => sign * g.n,
                             uploads_delivered => sign * g.delivered, sent => sign * g.sent,
                             failed => sign * g.failed);
    END LOOP;
    FOR g IN
        SELECT u.session_id, count(*) AS n, count(*) FILTER (WHERE r.sent > 0) AS delivered,
               count(*) FILTER (WHERE r.failed > 0) AS failed
        FROM unnest(changed) AS u LEFT JOIN unnest(counts) AS r ON r.upload_id = u.id
        GROUP BY 1
    LOOP
        PERFORM bump_session(g.session_id, images => sign * g.n,
                             delivered => sign * g.delivered, failed => sign * g.failed);
    END LOOP;
    PERFORM bump_project_statuses(
        ARRAY(SELECT ROW(r.project_id, r.status, sign)::status_change FROM unnest(counts) r));
    PERFORM bump_series(ARRAY(SELECT upload_series(r, sign) FROM unnest(counts) AS r));
END
$$;

-- Uploads leaving: their rollup rows go, counted out; returned, so a moved upload can
-- carry its delivery counts to its new place.
CREATE OR REPLACE FUNCTION uploads_leave(leaving uploads[]) RETURNS upload_rollups[]
LANGUAGE plpgsql AS $$
DECLARE
    gone upload_rollups[];
BEGIN
    WITH deleted AS (
        DELETE FROM upload_rollups r USING unnest(leaving) AS u WHERE r.upload_id = u.id
        RETURNING r
    )
    SELECT coalesce(array_agg(deleted.r), '{}') INTO gone FROM deleted;
    PERFORM count_uploads(leaving, gone, -1);
    RETURN gone;
END
$$;

-- Uploads arriving, with the delivery counts they carry (none, for a new one).
CREATE OR REPLACE FUNCTION uploads_arrive(arriving uploads[], carried upload_rollups[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    arrived upload_rollups[];
BEGIN
    WITH inserted AS (
        INSERT INTO upload_rollups AS r (upload_id, deliveries, sent, failed, project_id,
                                         created_at, size_bytes, source)
        SELECT u.id, coalesce(c.deliveries, 0), coalesce(c.sent, 0), coalesce(c.failed, 0),
               u.project_id, u.created_at, u.size_bytes, u.source
        FROM unnest(arriving) AS u LEFT JOIN unnest(carried) AS c ON c.upload_id = u.id
        RETURNING r
    )
    SELECT array_agg(inserted.r) INTO arrived FROM inserted;
    PERFORM count_uploads(arriving, arrived, 1);
END
$$;

CREATE OR REPLACE FUNCTION rollup_upload_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM uploads_arrive(ARRAY(SELECT n::uploads FROM new_rows AS n), '{}');
    ELSE
        PERFORM uploads_leave(ARRAY(SELECT o::uploads FROM old_rows AS o));
    END IF;
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER uploads_inserted_rollup AFTER INSERT ON uploads
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_upload_rows();
CREATE OR REPLACE TRIGGER uploads_deleted_rollup AFTER DELETE ON uploads
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_upload_rows();

-- An upload moved (to another session, time, size or source; rare, one at a time) carries
-- its rollup row's counts from its old place to its new one, and its deliveries' copies of
-- its createdAt follow.
CREATE OR REPLACE FUNCTION rollup_uploads() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM uploads_arrive(ARRAY[NEW], uploads_leave(ARRAY[OLD]));
    IF OLD.created_at <> NEW.created_at THEN
        UPDATE deliveries SET upload_created_at = NEW.created_at WHERE upload_id = NEW.id;
    END IF;
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER uploads_rollup
    AFTER UPDATE OF id, session_id, project_id, created_at, size_bytes, source ON uploads
    FOR EACH ROW EXECUTE FUNCTION rollup_uploads();

-- Deliveries are the busiest writes (every result report is one). Each carries copies of
-- its upload's createdAt and its destination's type, taken from them here whatever a
-- writer sent (and updated by their triggers when those change), so that deliveries
-- leaving with their upload, destination or session count out from their own rows.
CREATE OR REPLACE FUNCTION copy_delivery_parents() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.upload_created_at := (SELECT created_at FROM uploads WHERE id = NEW.upload_id);
    NEW.destination_type := (SELECT type FROM destinations WHERE id = NEW.destination_id);
    IF NEW.upload_created_at IS NULL OR NEW.destination_type IS NULL THEN
        RAISE foreign_key_violation USING MESSAGE = format(
            'delivery (%s, %s) names an upload or a destination that does not exist',
            NEW.upload_id, NEW.destination_id);
    END IF;
    RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER deliveries_copy_parents
    BEFORE INSERT OR UPDATE OF upload_id, destination_id, upload_created_at, destination_type
    ON deliveries
    FOR EACH ROW EXECUTE FUNCTION copy_delivery_parents();

-- Signed per-delivery changes applied: upload counts first; where an upload's "any sent" or
-- "any failed" flips, its session's and project's image counts follow. Uploads already gone
-- (deleted with their deliveries) took their counts with them and are skipped.
CREATE OR REPLACE FUNCTION apply_delivery_changes(changes delivery_change[]) RETURNS void
LANGUAGE sql AS $$
    WITH delta AS (
        SELECT upload_id, session_id, project_id, sum(deliveries) AS deliveries,
               sum(sent) AS sent, sum(failed) AS failed
        FROM unnest(changes)
        GROUP BY upload_id, session_id, project_id
    ),
    changed AS (
        UPDATE upload_rollups r
        SET deliveries = r.deliveries + d.deliveries, sent = r.sent + d.sent,
            failed = r.failed + d.failed
        FROM delta d
        WHERE r.upload_id = d.upload_id
        RETURNING d.session_id, d.project_id, d.sent, d.failed,
                  (r.sent > 0)::int - (r.sent - d.sent > 0)::int AS delivered_flip,
                  (r.failed > 0)::int - (r.failed - d.failed > 0)::int AS failed_flip
    ),
    sessions AS (
        UPDATE session_rollups s
        SET images_delivered = s.images_delivered + f.delivered,
            images_failed = s.images_failed + f.failed
        FROM (SELECT session_id, sum(delivered_flip) AS delivered, sum(failed_flip) AS failed
              FROM changed GROUP BY session_id) AS f
        WHERE s.session_id = f.session_id AND (f.delivered <> 0 OR f.failed <> 0)
    )
    INSERT INTO project_rollups AS r (project_id, slot, uploads_delivered, deliveries_sent,
                                      deliveries_failed)
    SELECT project_id, rollup_slot(), sum(delivered_flip), sum(sent), sum(failed)
    FROM changed
    GROUP BY project_id
    ON CONFLICT (project_id, slot) DO UPDATE SET
        uploads_delivered = r.uploads_delivered + EXCLUDED.uploads_delivered,
        deliveries_sent = r.deliveries_sent + EXCLUDED.deliveries_sent,
        deliveries_failed = r.deliveries_failed + EXCLUDED.deliveries_failed
$$;

-- A delivery counted in (sign 1) or out (-1).
CREATE OR REPLACE FUNCTION delivery_delta(delivery deliveries, sign int)
RETURNS delivery_change LANGUAGE sql IMMUTABLE AS $$
    SELECT ROW(delivery.upload_id, delivery.session_id, delivery.project_id, sign,
               sign * (delivery.status = 'sent')::int,
               sign * (delivery.status = 'failed')::int)::delivery_change
$$;

-- One function for the three statement triggers: the rows a statement added count in, the
-- rows it removed count out (an update does both). Each transition table exists only for
-- the operations that have it.
CREATE OR REPLACE FUNCTION rollup_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changes delivery_change[] := '{}';
    series series_change[] := '{}';
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        changes := changes || ARRAY(SELECT delivery_delta(n, 1) FROM new_rows AS n);
        series := series || ARRAY(
            SELECT delivery_series(n.project_id, n.destination_type, n.upload_created_at,
                                   n.status, 1)
            FROM new_rows AS n);
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        changes := changes || ARRAY(SELECT delivery_delta(o, -1) FROM old_rows AS o);
        series := series || ARRAY(
            SELECT delivery_series(o.project_id, o.destination_type, o.upload_created_at,
                                   o.status, -1)
            FROM old_rows AS o);
    END IF;
    PERFORM bump_series(series);
    PERFORM apply_delivery_changes(changes);
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER deliveries_inserted_rollup AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_deliveries();
CREATE OR REPLACE TRIGGER deliveries_deleted_rollup AFTER DELETE ON deliveries
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_deliveries();
CREATE OR REPLACE TRIGGER deliveries_updated_rollup AFTER UPDATE ON deliveries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_deliveries();

-- Delivery results change upload statuses: upload_rollups is updated once per statement,
-- and this moves its project's status counts and its series counts (an update that
-- leaves a status unchanged adds and takes the same one).
CREATE OR REPLACE FUNCTION rollup_upload_statuses() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bump_project_statuses(ARRAY(
        SELECT ROW(project_id, status, sum(change))::status_change
        FROM (SELECT project_id, status, 1 AS change FROM new_rows
              UNION ALL
              SELECT project_id, status, -1 FROM old_rows) AS changes
        GROUP BY project_id, status));
    PERFORM bump_series(ARRAY(SELECT upload_series(n, 1) FROM new_rows AS n
                              UNION ALL
                              SELECT upload_series(o, -1) FROM old_rows AS o));
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER upload_rollups_updated AFTER UPDATE ON upload_rollups
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_upload_statuses();
