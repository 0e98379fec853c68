-- name: database_role
-- What the worker's database is: a primary, or a standby and how far its replay is behind
-- (0 when it has replayed all it received; NULL before it replayed any transaction).
SELECT CASE WHEN pg_is_in_recovery() THEN 'standby' ELSE 'primary' END AS role,
       CASE
           WHEN NOT pg_is_in_recovery() THEN NULL
           WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
           ELSE greatest(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp()))
       END::float8 AS replay_lag_seconds;

-- name: session_settings
-- The named settings as this session has them, in pg_settings' units (milliseconds for
-- the timeouts).
SELECT name, setting FROM pg_settings WHERE name = ANY (%(names)s::text[]);
