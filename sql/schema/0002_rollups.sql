-- Rollup tables: counts kept by triggers in the writer's own transaction (the triggers,
-- and what each rollup should hold, are in routines/). Per-project rows are split into
-- slots by writer backend; readers sum the slots.

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
