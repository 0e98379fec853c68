-- Deliveries are the busiest writes, so their rollups are counted per statement over
-- transition tables (routines/3_rollup_counts.sql); this is the change one delivery makes.

CREATE TYPE delivery_change AS (
    upload_id  uuid,
    session_id uuid,
    project_id uuid,
    deliveries int,
    sent       int,
    failed     int
);
