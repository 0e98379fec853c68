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
