-- Two more rollups for filtered totals, kept by the row triggers like the project counts
-- (slots as in 0002):
-- * Uploads per project and UTC day, so a date window's total reads one rollup row per
--   project and whole day inside it, and counts index entries only for the part-days at
--   its ends (at most two days' worth; none for windows on day boundaries). Without it a
--   week's window over a large scope counted every upload of that week.
-- * Sessions per project and stored status. A status-filtered total of sessions over all
--   time then reads those, and counts only the pending and active sessions still live
--   (an index range on expiry: few, as sessions expire); the rest of them are reported
--   expired. Without it, `status=expired` counted every expired session.

CREATE TABLE project_day_rollups (
    project_id uuid NOT NULL,
    day        date NOT NULL,  -- the UTC calendar day of createdAt
    slot       smallint NOT NULL,
    uploads    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, day, slot)
);

CREATE FUNCTION utc_day(moment timestamptz) RETURNS date LANGUAGE sql IMMUTABLE AS
$$ SELECT (moment AT TIME ZONE 'UTC')::date $$;

CREATE FUNCTION bump_day(project uuid, created timestamptz, uploads bigint)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO project_day_rollups AS r (project_id, day, slot, uploads)
    VALUES (project, utc_day(created), rollup_slot(), uploads)
    ON CONFLICT (project_id, day, slot) DO UPDATE SET uploads = r.uploads + EXCLUDED.uploads
$$;

-- As in 0006, and the upload's day is counted in or out with it.
CREATE OR REPLACE FUNCTION rollup_uploads() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    gone upload_rollups%ROWTYPE;
    arrived text;
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        DELETE FROM upload_rollups WHERE upload_id = OLD.id RETURNING * INTO gone;
        PERFORM bump_project(OLD.project_id, uploads => -1,
                             uploads_delivered => -(coalesce(gone.sent, 0) > 0)::int,
                             sent => -coalesce(gone.sent, 0), failed => -coalesce(gone.failed, 0));
        PERFORM bump_session(OLD.session_id, images => -1,
                             delivered => -(coalesce(gone.sent, 0) > 0)::int,
                             failed => -(coalesce(gone.failed, 0) > 0)::int);
        PERFORM bump_day(OLD.project_id, OLD.created_at, -1);
        IF gone.status IS NOT NULL THEN
            PERFORM bump_project_statuses(
                ARRAY[ROW(gone.project_id, gone.status, -1)::status_change]);
        END IF;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO upload_rollups (upload_id, deliveries, sent, failed, project_id, created_at)
        VALUES (NEW.id, coalesce(gone.deliveries, 0), coalesce(gone.sent, 0),
                coalesce(gone.failed, 0), NEW.project_id, NEW.created_at)
        RETURNING status INTO arrived;
        PERFORM bump_project(NEW.project_id, uploads => 1,
                             uploads_delivered => (coalesce(gone.sent, 0) > 0)::int,
                             sent => coalesce(gone.sent, 0), failed => coalesce(gone.failed, 0));
        PERFORM bump_session(NEW.session_id, images => 1,
                             delivered => (coalesce(gone.sent, 0) > 0)::int,
                             failed => (coalesce(gone.failed, 0) > 0)::int);
        PERFORM bump_day(NEW.project_id, NEW.created_at, 1);
        PERFORM bump_project_statuses(ARRAY[ROW(NEW.project_id, arrived, 1)::status_change]);
    END IF;
    RETURN NULL;
END
$$;

CREATE TABLE project_session_status_rollups (
    project_id uuid NOT NULL,
    status     text NOT NULL,  -- the stored status
    slot       smallint NOT NULL,
    sessions   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, status, slot)
);

-- The live pending and active sessions of a project, by expiry.
CREATE INDEX upload_sessions_expiry_idx ON upload_sessions (project_id, status, expires_at);

CREATE FUNCTION bump_session_status(project uuid, status text, sessions bigint)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO project_session_status_rollups AS r (project_id, status, slot, sessions)
    VALUES (project, status, rollup_slot(), sessions)
    ON CONFLICT (project_id, status, slot) DO UPDATE SET sessions = r.sessions + EXCLUDED.sessions
$$;

-- As in 0002, and the session's stored status is counted in or out with it.
CREATE OR REPLACE FUNCTION rollup_upload_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        PERFORM bump_project(OLD.project_id, sessions => -1);
        PERFORM bump_month(OLD.project_id, OLD.created_at, -1);
        PERFORM bump_session_status(OLD.project_id, OLD.status, -1);
    END IF;
    IF TG_OP = 'DELETE' THEN
        DELETE FROM session_rollups WHERE session_id = OLD.id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM bump_project(NEW.project_id, sessions => 1);
        PERFORM bump_month(NEW.project_id, NEW.created_at, 1);
        PERFORM bump_session_status(NEW.project_id, NEW.status, 1);
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO session_rollups (session_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;
DROP TRIGGER upload_sessions_rollup ON upload_sessions;
CREATE TRIGGER upload_sessions_rollup
    AFTER INSERT OR DELETE OR UPDATE OF project_id, created_at, status ON upload_sessions
    FOR EACH ROW EXECUTE FUNCTION rollup_upload_sessions();

CREATE VIEW expected_project_session_status_rollups AS
SELECT project_id, status, count(*) AS sessions FROM upload_sessions GROUP BY 1, 2;

CREATE VIEW expected_project_day_rollups AS
SELECT project_id, utc_day(created_at) AS day, count(*) AS uploads FROM uploads GROUP BY 1, 2;

CREATE OR REPLACE FUNCTION rebuild_rollups() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM project_rollups;
    DELETE FROM project_month_rollups;
    DELETE FROM project_day_rollups;
    DELETE FROM project_session_status_rollups;
    DELETE FROM session_rollups;
    DELETE FROM upload_rollups;
    INSERT INTO upload_rollups (upload_id, deliveries, sent, failed, project_id, created_at)
    SELECT upload_id, deliveries, sent, failed, project_id, created_at
    FROM expected_upload_rollups;
    DELETE FROM project_status_rollups;
    INSERT INTO project_status_rollups (project_id, status, slot, uploads)
    SELECT project_id, status, 0, uploads FROM expected_project_status_rollups;
    INSERT INTO project_day_rollups (project_id, day, slot, uploads)
    SELECT project_id, day, 0, uploads FROM expected_project_day_rollups;
    INSERT INTO project_session_status_rollups (project_id, status, slot, sessions)
    SELECT project_id, status, 0, sessions FROM expected_project_session_status_rollups;
    INSERT INTO session_rollups SELECT * FROM expected_session_rollups;
    INSERT INTO project_month_rollups (project_id, month, slot, sessions)
    SELECT project_id, month, 0, sessions FROM expected_project_month_rollups;
    INSERT INTO project_rollups (project_id, slot, sessions, uploads, uploads_delivered,
                                 deliveries_sent, deliveries_failed)
    SELECT project_id, 0, sessions, uploads, uploads_delivered, deliveries_sent,
           deliveries_failed
    FROM expected_project_rollups;
END
$$;

INSERT INTO project_day_rollups (project_id, day, slot, uploads)
SELECT project_id, day, 0, uploads FROM expected_project_day_rollups;
INSERT INTO project_session_status_rollups (project_id, status, slot, sessions)
SELECT project_id, status, 0, sessions FROM expected_project_session_status_rollups;
