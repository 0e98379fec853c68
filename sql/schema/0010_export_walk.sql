-- Exports walk a scope's uploads newest first across all its projects (uploads_recent_idx)
-- and, beside them in the same order, their deliveries: each upload's counts, status and
-- per-type breakdown come from a merge of the two walks, with no lookup per upload. The
-- index carries what that needs (type, in the breakdown's C order, status and project).
CREATE INDEX deliveries_upload_order_idx
    ON deliveries (upload_created_at DESC, upload_id DESC, destination_type COLLATE "C")
    INCLUDE (project_id, status);
