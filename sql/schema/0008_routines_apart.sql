-- Functions, views and triggers now live in routines/, applied whole whenever they change,
-- instead of being redefined migration after migration. This removes what they replaced
-- on databases migrated before (on a new database there is nothing to remove), and lets a
-- rollup be refilled from its expected_ view with a slot of 0.

-- The three delivery trigger functions became one (rollup_deliveries); their triggers are
-- created again by routines/.
DROP FUNCTION IF EXISTS rollup_deliveries_inserted() CASCADE;
DROP FUNCTION IF EXISTS rollup_deliveries_deleted() CASCADE;
DROP FUNCTION IF EXISTS rollup_deliveries_updated() CASCADE;

ALTER TABLE project_rollups ALTER slot SET DEFAULT 0;
ALTER TABLE project_month_rollups ALTER slot SET DEFAULT 0;
ALTER TABLE project_status_rollups ALTER slot SET DEFAULT 0;
ALTER TABLE project_day_rollups ALTER slot SET DEFAULT 0;
ALTER TABLE project_session_status_rollups ALTER slot SET DEFAULT 0;
