-- Usage over time (GET /api/v1/stats/series): per project, counts in UTC cells of six sizes
-- (month, ISO week, day, 6 hours, hour, quarter hour), so that any bucket local to any time
-- zone is an exact signed sum of a few cells (a Berlin day: its UTC day, plus the hour
-- before, minus its last hour). `dimension` '' counts every upload (and session);
-- 'status', 'source' and 'type' split the upload and delivery figures by the upload's
-- status, its source or the delivery's destination type, in month, week and day cells only
-- (finer parts of those are counted from the base tables). Slots as in 0002. Uploads are
-- counted in the cell of their createdAt, with their deliveries' current results; sessions
-- in the cell of theirs.

CREATE TABLE series_rollups (
    project_id uuid NOT NULL,
    dimension  text NOT NULL,
    value      text NOT NULL,
    grain      text NOT NULL,
    -- The minute of the UTC day the cell starts at (0 for days, weeks and months): the
    -- cells a series reads below the day lie at one or two times of day (a Kolkata day
    -- starts at 18:30 UTC every day), and so lie together in the primary key's order.
    minute     smallint NOT NULL,
    at         timestamptz NOT NULL,  -- the cell's first instant
    slot       smallint NOT NULL DEFAULT 0,
    sessions   bigint NOT NULL DEFAULT 0,
    uploads    bigint NOT NULL DEFAULT 0,
    bytes      numeric NOT NULL DEFAULT 0,  -- a sum of sizes can pass 2^63
    sent       bigint NOT NULL DEFAULT 0,
    failed     bigint NOT NULL DEFAULT 0,
    pending    bigint NOT NULL DEFAULT 0,
    -- (Not INCLUDE-ing the figures for index-only reads: a writer updates one cell row
    -- many times in a transaction, and each version would add an index entry to search.)
    PRIMARY KEY (project_id, dimension, grain, minute, at, value, slot)
);

-- /stats reads each project's sessions of this month: from this small index alone.
CREATE INDEX series_rollups_months_idx ON series_rollups (project_id, at) INCLUDE (sessions)
    WHERE dimension = '' AND grain = 'month';

CREATE TYPE series_change AS (
    project_id uuid,
    dimension  text,
    value      text,
    moment     timestamptz,
    sessions   int,
    uploads    int,
    bytes      numeric,
    sent       int,
    failed     int,
    pending    int
);

-- Sessions per UTC month and uploads per UTC day are the series' month and day cells now:
-- their rollups go, with the routines that kept and checked them.
DROP VIEW IF EXISTS expected_project_month_rollups, expected_project_day_rollups;
DROP TABLE project_month_rollups, project_day_rollups;
DROP FUNCTION IF EXISTS bump_month(uuid, timestamptz, bigint), bump_day(uuid, timestamptz, bigint),
    utc_month(timestamptz), utc_day(timestamptz);

-- Each upload's own rollup row carries what the series count of it (its size and source,
-- beside its delivery counts, status, project and createdAt), so a change to its deliveries
-- moves its series counts without reading the upload, which a cascade may already have
-- deleted.
ALTER TABLE upload_rollups ADD COLUMN size_bytes bigint, ADD COLUMN source text;
ALTER TABLE upload_rollups DISABLE TRIGGER USER;  -- nothing is counted anew here
UPDATE upload_rollups r SET size_bytes = u.size_bytes, source = u.source
FROM uploads u WHERE u.id = r.upload_id;
ALTER TABLE upload_rollups ENABLE TRIGGER USER;
ALTER TABLE upload_rollups ALTER size_bytes SET NOT NULL, ALTER source SET NOT NULL;

-- Each delivery carries copies of its upload's createdAt and its destination's type (kept
-- by triggers, whatever a writer sends), so deliveries leaving in bulk, with their upload,
-- destination or session, are counted out by type from their own rows, once per statement.
ALTER TABLE deliveries ADD COLUMN upload_created_at timestamptz,
    ADD COLUMN destination_type text;
ALTER TABLE deliveries DISABLE TRIGGER USER;
UPDATE deliveries d SET upload_created_at = u.created_at, destination_type = t.type
FROM uploads u, destinations t WHERE u.id = d.upload_id AND t.id = d.destination_id;
ALTER TABLE deliveries ENABLE TRIGGER USER;
ALTER TABLE deliveries ALTER upload_created_at SET NOT NULL,
    ALTER destination_type SET NOT NULL;
