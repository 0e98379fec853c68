-- Rollups: counts kept by triggers in the writer's own transaction, so readers pay for
-- the size of their scope, not of its history, and a snapshot sees rows and counts agree.
-- Per-project rows are split into slots by writer backend, so concurrent writers to one
-- project do not queue on one hot row; readers sum the slots.
-- No foreign keys: a cascade may delete a parent before its children's triggers run, and
-- a leftover zero row is harmless. `flask reconcile` recomputes everything from the base
-- tables and reports (or fixes) any drift.

CREATE TABLE project_rollups (
    project_id        uuid NOT NULL,
    slot              smallint NOT NULL,
    sessions          bigint NOT NULL DEFAULT 0,
    uploads           bigint NOT NULL DEFAULT 0,
    uploads_delivered bigint NOT NULL DEFAULT 0,  -- uploads with at least one sent delivery
    deliveries_sent   bigint NOT NULL DEFAULT 0,
    deliveries_failed bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, slot)
);

CREATE TABLE project_month_rollups (
    project_id uuid NOT NULL,
    month      date NOT NULL,  -- first day of the UTC calendar month
    slot       smallint NOT NULL,
    sessions   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, month, slot)
);
CREATE INDEX project_month_rollups_month_idx ON project_month_rollups (month, project_id);

CREATE TABLE session_rollups (
    session_id       uuid PRIMARY KEY,
    images           bigint NOT NULL DEFAULT 0,
    images_delivered bigint NOT NULL DEFAULT 0,  -- uploads with at least one sent delivery
    images_failed    bigint NOT NULL DEFAULT 0,  -- uploads with at least one failed delivery
    destinations     bigint NOT NULL DEFAULT 0
);

CREATE TABLE upload_rollups (
    upload_id  uuid PRIMARY KEY,
    deliveries integer NOT NULL DEFAULT 0,
    sent       integer NOT NULL DEFAULT 0,
    failed     integer NOT NULL DEFAULT 0
);

CREATE FUNCTION rollup_slot() RETURNS smallint LANGUAGE sql STABLE AS
$$ SELECT (pg_backend_pid() % 8)::smallint $$;

CREATE FUNCTION utc_month(moment timestamptz) RETURNS date LANGUAGE sql IMMUTABLE AS
$$ SELECT date_trunc('month', moment AT TIME ZONE 'UTC')::date $$;

CREATE FUNCTION bump_project(project uuid, sessions bigint DEFAULT 0, uploads bigint DEFAULT 0,
                             uploads_delivered bigint DEFAULT 0, sent bigint DEFAULT 0,
                             failed bigint DEFAULT 0)
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

CREATE FUNCTION bump_month(project uuid, created timestamptz, sessions bigint)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO project_month_rollups AS r (project_id, month, slot, sessions)
    VALUES (project, utc_month(created), rollup_slot(), sessions)
    ON CONFLICT (project_id, month, slot) DO UPDATE SET sessions = r.sessions + EXCLUDED.sessions
$$;

CREATE FUNCTION bump_session(session uuid, images bigint DEFAULT 0, delivered bigint DEFAULT 0,
                             failed bigint DEFAULT 0, destinations bigint DEFAULT 0)
RETURNS void LANGUAGE sql AS $$
    UPDATE session_rollups SET images = images + bump_session.images,
                               images_delivered = images_delivered + delivered,
                               images_failed = images_failed + bump_session.failed,
                               destinations = session_rollups.destinations + bump_session.destinations
    WHERE session_id = session
$$;

CREATE FUNCTION rollup_upload_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        PERFORM bump_project(OLD.project_id, sessions => -1);
        PERFORM bump_month(OLD.project_id, OLD.created_at, -1);
    END IF;
    IF TG_OP = 'DELETE' THEN
        DELETE FROM session_rollups WHERE session_id = OLD.id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM bump_project(NEW.project_id, sessions => 1);
        PERFORM bump_month(NEW.project_id, NEW.created_at, 1);
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO session_rollups (session_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER upload_sessions_rollup
    AFTER INSERT OR DELETE OR UPDATE OF project_id, created_at ON upload_sessions
    FOR EACH ROW EXECUTE FUNCTION rollup_upload_sessions();

CREATE FUNCTION rollup_destinations() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER destinations_rollup
    AFTER INSERT OR DELETE OR UPDATE OF session_id ON destinations
    FOR EACH ROW EXECUTE FUNCTION rollup_destinations();

-- An upload leaving takes what its deliveries contributed with it (if their own triggers
-- have not already taken it: whichever runs first, the other finds nothing left).
CREATE FUNCTION rollup_uploads() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    gone upload_rollups%ROWTYPE;
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        DELETE FROM upload_rollups WHERE upload_id = OLD.id RETURNING * INTO gone;
        PERFORM bump_project(OLD.project_id, uploads => -1,
                             uploads_delivered => -(coalesce(gone.sent, 0) > 0)::int,
                             sent => -coalesce(gone.sent, 0), failed => -coalesce(gone.failed, 0));
        PERFORM bump_session(OLD.session_id, images => -1,
                             delivered => -(coalesce(gone.sent, 0) > 0)::int,
                             failed => -(coalesce(gone.failed, 0) > 0)::int);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO upload_rollups (upload_id, deliveries, sent, failed)
        VALUES (NEW.id, coalesce(gone.deliveries, 0), coalesce(gone.sent, 0),
                coalesce(gone.failed, 0));
        PERFORM bump_project(NEW.project_id, uploads => 1,
                             uploads_delivered => (coalesce(gone.sent, 0) > 0)::int,
                             sent => coalesce(gone.sent, 0), failed => coalesce(gone.failed, 0));
        PERFORM bump_session(NEW.session_id, images => 1,
                             delivered => (coalesce(gone.sent, 0) > 0)::int,
                             failed => (coalesce(gone.failed, 0) > 0)::int);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER uploads_rollup
    AFTER INSERT OR DELETE OR UPDATE OF id, session_id, project_id ON uploads
    FOR EACH ROW EXECUTE FUNCTION rollup_uploads();

-- A delivery changes its upload's counts; when the upload's "any sent" or "any failed"
-- flips, so do its session's and project's image counts.
CREATE FUNCTION apply_delivery(upload uuid, session uuid, project uuid, status text, sign int)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    sent_delta int := CASE WHEN status = 'sent' THEN sign ELSE 0 END;
    failed_delta int := CASE WHEN status = 'failed' THEN sign ELSE 0 END;
    after upload_rollups%ROWTYPE;
BEGIN
    UPDATE upload_rollups
    SET deliveries = deliveries + sign, sent = sent + sent_delta, failed = failed + failed_delta
    WHERE upload_id = upload
    RETURNING * INTO after;
    IF NOT FOUND THEN
        RETURN;  -- the upload is gone and took its deliveries' counts with it
    END IF;
    PERFORM bump_project(project,
                         uploads_delivered => ((after.sent > 0)::int
                                               - (after.sent - sent_delta > 0)::int),
                         sent => sent_delta, failed => failed_delta);
    PERFORM bump_session(session,
                         delivered => (after.sent > 0)::int - (after.sent - sent_delta > 0)::int,
                         failed => (after.failed > 0)::int
                                   - (after.failed - failed_delta > 0)::int);
END
$$;

CREATE FUNCTION rollup_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        PERFORM apply_delivery(OLD.upload_id, OLD.session_id, OLD.project_id, OLD.status, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM apply_delivery(NEW.upload_id, NEW.session_id, NEW.project_id, NEW.status, 1);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER deliveries_rollup
    AFTER INSERT OR DELETE OR UPDATE ON deliveries
    FOR EACH ROW EXECUTE FUNCTION rollup_deliveries();

-- What every rollup should hold, counted afresh from the base tables. Rebuilding and
-- reconciling both read these, so they cannot disagree about what "right" is.
CREATE VIEW expected_upload_rollups AS
SELECT u.id AS upload_id, count(d.upload_id) AS deliveries,
       count(*) FILTER (WHERE d.status = 'sent') AS sent,
       count(*) FILTER (WHERE d.status = 'failed') AS failed
FROM uploads u LEFT JOIN deliveries d ON d.upload_id = u.id
GROUP BY u.id;

CREATE VIEW expected_session_rollups AS
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

CREATE VIEW expected_project_month_rollups AS
SELECT project_id, utc_month(created_at) AS month, count(*) AS sessions
FROM upload_sessions GROUP BY 1, 2;

CREATE VIEW expected_project_rollups AS
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

CREATE FUNCTION rebuild_rollups() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM project_rollups;
    DELETE FROM project_month_rollups;
    DELETE FROM session_rollups;
    DELETE FROM upload_rollups;
    INSERT INTO upload_rollups SELECT * FROM expected_upload_rollups;
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

CREATE FUNCTION rollup_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM rebuild_rollups();
    RETURN NULL;
END
$$;
CREATE TRIGGER projects_truncated AFTER TRUNCATE ON projects
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_truncated();
CREATE TRIGGER upload_sessions_truncated AFTER TRUNCATE ON upload_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_truncated();
CREATE TRIGGER destinations_truncated AFTER TRUNCATE ON destinations
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_truncated();
CREATE TRIGGER uploads_truncated AFTER TRUNCATE ON uploads
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_truncated();
CREATE TRIGGER deliveries_truncated AFTER TRUNCATE ON deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_truncated();

SELECT rebuild_rollups();
