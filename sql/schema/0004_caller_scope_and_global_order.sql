-- A newest-first index over all projects. (The caller's scope it serves is defined in
-- routines/1_scope.sql.)
--
-- A scope that holds a large share of all rows finds its newest rows fastest by walking
-- every project's rows newest first and skipping the few outside it (index-only, thanks to
-- INCLUDE); a small scope walks its own projects' indexes instead. Queries pick per call.
CREATE INDEX uploads_recent_idx ON uploads (created_at DESC, id DESC) INCLUDE (project_id);
CREATE INDEX upload_sessions_recent_idx
    ON upload_sessions (created_at DESC, id DESC) INCLUDE (project_id);
