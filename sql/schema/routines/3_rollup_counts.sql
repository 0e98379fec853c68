-- Rollups: counts kept by triggers in the writer's own transaction, so readers pay for the
-- size of their scope, not of its history, and a snapshot sees rows and counts agree.
-- Per-project rows are split into slots by writer backend, so concurrent writers to one
-- project do not queue on one hot row; readers sum the slots. Rollup tables have no foreign
-- keys: a cascade may delete a parent before its children's triggers run, and a leftover
-- zero row is harmless. 4_rollup_checks.sql says what each should hold; `flask reconcile`
-- compares and repairs.

CREATE OR REPLACE FUNCTION rollup_slot() RETURNS smallint LANGUAGE sql STABLE AS
$$ SELECT (pg_backend_pid() % 8)::smallint $$;

CREATE OR REPLACE FUNCTION utc_month(moment timestamptz) RETURNS date LANGUAGE sql IMMUTABLE AS
$$ SELECT date_trunc('month', moment AT TIME ZONE 'UTC')::date $$;

CREATE OR REPLACE FUNCTION utc_day(moment timestamptz) RETURNS date LANGUAGE sql IMMUTABLE AS
$$ SELECT (moment AT TIME ZONE 'UTC')::date $$;

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

CREATE OR REPLACE FUNCTION bump_month(project uuid, created timestamptz, sessions bigint)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO project_month_rollups AS r (project_id, month, slot, sessions)
    VALUES (project, utc_month(created), rollup_slot(), sessions)
    ON CONFLICT (project_id, month, slot) DO UPDATE SET sessions = r.sessions + EXCLUDED.sessions
$$;

CREATE OR REPLACE FUNCTION bump_day(project uuid, created timestamptz, uploads bigint)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO project_day_rollups AS r (project_id, day, slot, uploads)
    VALUES (project, utc_day(created), rollup_slot(), uploads)
    ON CONFLICT (project_id, day, slot) DO UPDATE SET uploads = r.uploads + EXCLUDED.uploads
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

-- Sessions: a session arriving (sign 1) or leaving (-1) counts in its project's totals,
-- its UTC month and its stored status; an update leaves with its old row and arrives with
-- its new one.

CREATE OR REPLACE FUNCTION count_session(session upload_sessions, sign int) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bump_project(session.project_id, sessions => sign);
    PERFORM bump_month(session.project_id, session.created_at, sign);
    PERFORM bump_session_status(session.project_id, session.status, sign);
END
$$;

CREATE OR REPLACE FUNCTION rollup_upload_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        PERFORM count_session(OLD, -1);
    END IF;
    IF TG_OP = 'DELETE' THEN
        DELETE FROM session_rollups WHERE session_id = OLD.id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM count_session(NEW, 1);
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO session_rollups (session_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER upload_sessions_rollup
    AFTER INSERT OR DELETE OR UPDATE OF project_id, created_at, status ON upload_sessions
    FOR EACH ROW EXECUTE FUNCTION rollup_upload_sessions();

CREATE OR REPLACE FUNCTION rollup_destinations() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        PERFORM bump_session(OLD.session_id, destinations => -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM bump_session(NEW.session_id, destinations => 1);
    END IF;
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER destinations_rollup
    AFTER INSERT OR DELETE OR UPDATE OF session_id ON destinations
    FOR EACH ROW EXECUTE FUNCTION rollup_destinations();

-- Uploads: each has its own upload_rollups row (its delivery counts, hence its status).
-- Arriving or leaving, it counts in or out of its project's totals, its session's images,
-- its UTC day and its project's status counts, with the delivery figures its row holds
-- (`counts`; NULL when the row is already gone). An update (moved to another session or
-- time) carries its row's counts from the old place to the new.

CREATE OR REPLACE FUNCTION count_upload(upload uploads, counts upload_rollups, sign int)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    sent int := coalesce(counts.sent, 0);
    failed int := coalesce(counts.failed, 0);
BEGIN
    PERFORM bump_project(upload.project_id, uploads => sign,
                         uploads_delivered => sign * (sent > 0)::int,
                         sent => sign * sent, failed => sign * failed);
    PERFORM bump_session(upload.session_id, images => sign,
                         delivered => sign * (sent > 0)::int, failed => sign * (failed > 0)::int);
    PERFORM bump_day(upload.project_id, upload.created_at, sign);
    IF counts.status IS NOT NULL THEN
        PERFORM bump_project_statuses(
            ARRAY[ROW(counts.project_id, counts.status, sign)::status_change]);
    END IF;
END
$$;

-- An upload leaving takes what its deliveries contributed with it (if their own triggers
-- have not already taken it: whichever runs first, the other finds nothing left).
CREATE OR REPLACE FUNCTION rollup_uploads() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    gone upload_rollups%ROWTYPE;
    arrived upload_rollups%ROWTYPE;
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        DELETE FROM upload_rollups WHERE upload_id = OLD.id RETURNING * INTO gone;
        PERFORM count_upload(OLD, gone, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO upload_rollups (upload_id, deliveries, sent, failed, project_id, created_at)
        VALUES (NEW.id, coalesce(gone.deliveries, 0), coalesce(gone.sent, 0),
                coalesce(gone.failed, 0), NEW.project_id, NEW.created_at)
        RETURNING * INTO arrived;
        PERFORM count_upload(NEW, arrived, 1);
    END IF;
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER uploads_rollup
    AFTER INSERT OR DELETE OR UPDATE OF id, session_id, project_id, created_at ON uploads
    FOR EACH ROW EXECUTE FUNCTION rollup_uploads();

-- Deliveries are the busiest writes (every result report is one), so they are counted per
-- statement, over its transition tables: one set-based pass instead of upserts per row.

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
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        changes := changes || ARRAY(SELECT delivery_delta(n, 1) FROM new_rows AS n);
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        changes := changes || ARRAY(SELECT delivery_delta(o, -1) FROM old_rows AS o);
    END IF;
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
-- and this moves its project's status counts (an update that leaves a status unchanged
-- adds and takes the same one).
CREATE OR REPLACE FUNCTION rollup_upload_statuses() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bump_project_statuses(ARRAY(
        SELECT ROW(project_id, status, sum(change))::status_change
        FROM (SELECT project_id, status, 1 AS change FROM new_rows
              UNION ALL
              SELECT project_id, status, -1 FROM old_rows) AS changes
        GROUP BY project_id, status));
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER upload_rollups_updated AFTER UPDATE ON upload_rollups
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_upload_statuses();
