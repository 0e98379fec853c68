-- name: rollup_drift
-- Every stored rollup figure that differs from a fresh count of the base tables.
SELECT rollup, key, stored, expected FROM rollup_drift() ORDER BY rollup, key;

-- name: rebuild_rollups
-- Recompute every rollup while writers wait (readers go on).
SELECT rebuild_rollups();
