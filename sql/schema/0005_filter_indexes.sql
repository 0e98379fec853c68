-- Indexes that keep filtered lists index-backed: every row a filter matches is found in
-- list order (createdAt, id, newest first) within its project, and a filtered total
-- counts index entries, never whole rows.
--
-- Sessions by stored status (the reported status differs only by expiry, which the
-- index carries along). Uploads by derived status: upload_rollups already holds each
-- upload's delivery counts, so it gains the status they imply and the upload's project
-- and createdAt. The table is rebuilt rather than altered in place: one pass over
-- large worlds instead of a rewrite plus an update of every row.

CREATE INDEX upload_sessions_status_idx
    ON upload_sessions (project_id, status, created_at DESC, id DESC) INCLUDE (expires_at);

ALTER TABLE upload_rollups RENAME TO upload_rollups_before_0005;
ALTER INDEX upload_rollups_pkey RENAME TO upload_rollups_before_0005_pkey;

CREATE TABLE upload_rollups (
    upload_id  uuid PRIMARY KEY,
    deliveries integer NOT NULL DEFAULT 0,
    sent       integer NOT NULL DEFAULT 0,
    failed     integer NOT NULL DEFAULT 0,
    project_id uuid NOT NULL,
    created_at timestamptz NOT NULL,
    -- The SPEC's upload status, from the counts (the same rule sql/uploads.sql applies).
    status     text NOT NULL GENERATED ALWAYS AS (
        CASE WHEN deliveries = 0 THEN 'stored_only'
             WHEN sent = deliveries THEN 'delivered'
             WHEN failed = 0 THEN 'pending'
             WHEN sent = 0 THEN 'failed'
             ELSE 'partial' END) STORED
);

INSERT INTO upload_rollups (upload_id, deliveries, sent, failed, project_id, created_at)
SELECT r.upload_id, r.deliveries, r.sent, r.failed, u.project_id, u.created_at
FROM upload_rollups_before_0005 r
JOIN uploads u ON u.id = r.upload_id;

DROP TABLE upload_rollups_before_0005;

CREATE INDEX upload_rollups_status_idx
    ON upload_rollups (project_id, status, created_at DESC, upload_id DESC);

-- What the rollup should hold now includes where the upload sits in its lists.
CREATE OR REPLACE VIEW expected_upload_rollups AS
SELECT u.id AS upload_id, count(d.upload_id) AS deliveries,
       count(*) FILTER (WHERE d.status = 'sent') AS sent,
       count(*) FILTER (WHERE d.status = 'failed') AS failed,
       u.project_id, u.created_at
FROM uploads u LEFT JOIN deliveries d ON d.upload_id = u.id
GROUP BY u.id;

CREATE OR REPLACE FUNCTION rebuild_rollups() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM project_rollups;
    DELETE FROM project_month_rollups;
    DELETE FROM session_rollups;
    DELETE FROM upload_rollups;
    INSERT INTO upload_rollups (upload_id, deliveries, sent, failed, project_id, created_at)
    SELECT upload_id, deliveries, sent, failed, project_id, created_at
    FROM expected_upload_rollups;
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

-- As in 0002, and the upload's project and createdAt go along (an upload moved to
-- another time moves in the status index too).
CREATE OR REPLACE FUNCTION rollup_uploads() RETURNS trigger LANGUAGE plpgsql AS $$
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
        INSERT INTO upload_rollups (upload_id, deliveries, sent, failed, project_id, created_at)
        VALUES (NEW.id, coalesce(gone.deliveries, 0), coalesce(gone.sent, 0),
                coalesce(gone.failed, 0), NEW.project_id, NEW.created_at);
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
DROP TRIGGER uploads_rollup ON uploads;
CREATE TRIGGER uploads_rollup
    AFTER INSERT OR DELETE OR UPDATE OF id, session_id, project_id, created_at ON uploads
    FOR EACH ROW EXECUTE FUNCTION rollup_uploads();

-- Whether an upload passes the list filters that only its own row or its deliveries can
-- answer (source; a delivery to one of the destination types). NULL filters pass all.
CREATE FUNCTION upload_matches(upload uuid, sources text[], destination_types text[])
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT (sources IS NULL
            OR EXISTS (SELECT 1 FROM uploads WHERE id = upload AND source = ANY(sources)))
       AND (destination_types IS NULL
            OR EXISTS (SELECT 1 FROM deliveries d JOIN destinations t ON t.id = d.destination_id
                       WHERE d.upload_id = upload AND t.type = ANY(destination_types)))
$$;

-- A session's status as the API reports it: pending or active past its expiry is expired.
-- (A plain expression, so the planner inlines it.)
CREATE FUNCTION reported_session_status(stored text, expires_at timestamptz)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN stored IN ('pending', 'active') AND expires_at <= now()
                THEN 'expired' ELSE stored END
$$;

-- Whether a session carries the tag.
CREATE FUNCTION session_has_tag(session uuid, tag text)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM upload_sessions WHERE id = session AND tag = ANY(tags))
$$;
