-- Two more rollups for filtered totals (slots as in 0002):
-- * Uploads per project and UTC day, so a date window's total reads one rollup row per
--   project and whole day inside it, and counts index entries only for the part-days at
--   its ends (at most two days' worth; none for windows on day boundaries).
-- * Sessions per project and stored status. A status-filtered total of sessions over all
--   time then reads those, and counts only the pending and active sessions still live
--   (an index range on expiry: few, as sessions expire); the rest of them are reported
--   expired.

CREATE TABLE project_day_rollups (
    project_id uuid NOT NULL,
    day        date NOT NULL,  -- the UTC calendar day of createdAt
    slot       smallint NOT NULL,
    uploads    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, day, slot)
);

CREATE TABLE project_session_status_rollups (
    project_id uuid NOT NULL,
    status     text NOT NULL,  -- the stored status
    slot       smallint NOT NULL,
    sessions   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, status, slot)
);

-- The live pending and active sessions of a project, by expiry.
CREATE INDEX upload_sessions_expiry_idx ON upload_sessions (project_id, status, expires_at);
