-- Uploads per project and status, so a status-filtered total over all time reads a few
-- rollup rows per project instead of counting every matching upload (millions for a large
-- scope and a common status). Slots as in 0002; kept by routines/3_rollup_counts.sql.

CREATE TABLE project_status_rollups (
    project_id uuid NOT NULL,
    status     text NOT NULL,
    slot       smallint NOT NULL,
    uploads    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, status, slot)
);

CREATE TYPE status_change AS (project_id uuid, status text, change int);
