-- Uploads per project and status, so a status-filtered total over all time reads a few
-- rollup rows per project instead of counting every matching upload (millions for a large
-- scope and a common status). Kept from upload_rollups, whose generated status follows
-- each upload's deliveries: an upload arriving or leaving bumps its status in its own row
-- trigger (as it bumps its project's counts); delivery results, which change statuses,
-- update upload_rollups once per statement, and a statement trigger over its transition
-- tables moves the counts (an update that leaves a status unchanged adds and takes the
-- same one). Slots as in 0002.

CREATE TABLE project_status_rollups (
    project_id uuid NOT NULL,
    status     text NOT NULL,
    slot       smallint NOT NULL,
    uploads    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, status, slot)
);

CREATE TYPE status_change AS (project_id uuid, status text, change int);

CREATE FUNCTION bump_project_statuses(changes status_change[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO project_status_rollups AS r (project_id, status, slot, uploads)
    SELECT project_id, status, rollup_slot(), sum(change)
    FROM unnest(changes)
    GROUP BY project_id, status
    HAVING sum(change) <> 0
    ON CONFLICT (project_id, status, slot) DO UPDATE SET uploads = r.uploads + EXCLUDED.uploads
$$;

CREATE FUNCTION rollup_upload_statuses() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Grouped first, so a statement over millions of rows passes a few changes per project.
    PERFORM bump_project_statuses(ARRAY(
        SELECT ROW(project_id, status, sum(change))::status_change
        FROM (SELECT project_id, status, 1 AS change FROM new_rows
              UNION ALL
              SELECT project_id, status, -1 FROM old_rows) AS changes
        GROUP BY project_id, status));
    RETURN NULL;
END
$$;
CREATE TRIGGER upload_rollups_updated AFTER UPDATE ON upload_rollups
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_upload_statuses();

-- As in 0005, and the upload's status is counted in or out with it.
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
        PERFORM bump_project_statuses(ARRAY[ROW(NEW.project_id, arrived, 1)::status_change]);
    END IF;
    RETURN NULL;
END
$$;

-- What it should hold: upload_rollups counted (which reconcile checks against the base
-- tables in turn).
CREATE VIEW expected_project_status_rollups AS
SELECT project_id, status, count(*) AS uploads FROM upload_rollups GROUP BY 1, 2;

-- Rebuilding refills this rollup too (its row triggers do not see upload_rollups rebuilt).
CREATE OR REPLACE FUNCTION rebuild_rollups() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM project_rollups;
    DELETE FROM project_month_rollups;
    DELETE FROM session_rollups;
    DELETE FROM upload_rollups;
    INSERT INTO upload_rollups (upload_id, deliveries, sent, failed, project_id, created_at)
    SELECT upload_id, deliveries, sent, failed, project_id, created_at
    FROM expected_upload_rollups;
    DELETE FROM project_status_rollups;
    INSERT INTO project_status_rollups (project_id, status, slot, uploads)
    SELECT project_id, status, 0, uploads FROM expected_project_status_rollups;
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

INSERT INTO project_status_rollups (project_id, status, slot, uploads)
SELECT project_id, status, 0, uploads FROM expected_project_status_rollups;
