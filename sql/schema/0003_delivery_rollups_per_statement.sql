-- Deliveries are the busiest writes (every result report is one), so their rollups move
-- from a row-level trigger to statement-level ones over transition tables: one set-based
-- pass per statement instead of three upserts per row.

DROP TRIGGER deliveries_rollup ON deliveries;
DROP FUNCTION rollup_deliveries();
DROP FUNCTION apply_delivery(uuid, uuid, uuid, text, int);

CREATE TYPE delivery_change AS (
    upload_id  uuid,
    session_id uuid,
    project_id uuid,
    deliveries int,
    sent       int,
    failed     int
);

-- Apply signed per-delivery changes: upload counts first; where an upload's "any sent" or
-- "any failed" flips, its session's and project's image counts follow. Uploads already
-- gone (deleted with their deliveries) took their counts with them and are skipped.
CREATE FUNCTION apply_delivery_changes(changes delivery_change[]) RETURNS void
LANGUAGE sql AS $$
    WITH delta AS (
        SELECT upload_id, session_id, project_id, sum(deliveries) AS deliveries,
               sum(sent) AS sent, sum(failed) AS failed
        FROM unnest(changes)
        GROUP BY upload_id, session_id, project_id
    ),
    changed AS (
        UPDATE upload_rollups r
        SET deliveries = r.deliveries + d.deliveries, sent = r.sent + d.sent,
            failed = r.failed + d.failed
        FROM delta d
        WHERE r.upload_id = d.upload_id
        RETURNING d.session_id, d.project_id, d.sent, d.failed,
                  (r.sent > 0)::int - (r.sent - d.sent > 0)::int AS delivered_flip,
                  (r.failed > 0)::int - (r.failed - d.failed > 0)::int AS failed_flip
    ),
    sessions AS (
        UPDATE session_rollups s
        SET images_delivered = s.images_delivered + f.delivered,
            images_failed = s.images_failed + f.failed
        FROM (SELECT session_id, sum(delivered_flip) AS delivered, sum(failed_flip) AS failed
              FROM changed GROUP BY session_id) AS f
        WHERE s.session_id = f.session_id AND (f.delivered <> 0 OR f.failed <> 0)
    )
    INSERT INTO project_rollups AS r (project_id, slot, uploads_delivered, deliveries_sent,
                                      deliveries_failed)
    SELECT project_id, rollup_slot(), sum(delivered_flip), sum(sent), sum(failed)
    FROM changed
    GROUP BY project_id
    ON CONFLICT (project_id, slot) DO UPDATE SET
        uploads_delivered = r.uploads_delivered + EXCLUDED.uploads_delivered,
        deliveries_sent = r.deliveries_sent + EXCLUDED.deliveries_sent,
        deliveries_failed = r.deliveries_failed + EXCLUDED.deliveries_failed
$$;

CREATE FUNCTION rollup_deliveries_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM apply_delivery_changes(ARRAY(
        SELECT ROW(upload_id, session_id, project_id, 1, (status = 'sent')::int,
                   (status = 'failed')::int)::delivery_change
        FROM new_rows));
    RETURN NULL;
END
$$;

CREATE FUNCTION rollup_deliveries_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM apply_delivery_changes(ARRAY(
        SELECT ROW(upload_id, session_id, project_id, -1, -(status = 'sent')::int,
                   -(status = 'failed')::int)::delivery_change
        FROM old_rows));
    RETURN NULL;
END
$$;

CREATE FUNCTION rollup_deliveries_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM apply_delivery_changes(ARRAY(
        SELECT ROW(upload_id, session_id, project_id, 1, (status = 'sent')::int,
                   (status = 'failed')::int)::delivery_change
        FROM new_rows
        UNION ALL
        SELECT ROW(upload_id, session_id, project_id, -1, -(status = 'sent')::int,
                   -(status = 'failed')::int)::delivery_change
        FROM old_rows));
    RETURN NULL;
END
$$;

CREATE TRIGGER deliveries_inserted_rollup AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_deliveries_inserted();
CREATE TRIGGER deliveries_deleted_rollup AFTER DELETE ON deliveries
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_deliveries_deleted();
CREATE TRIGGER deliveries_updated_rollup AFTER UPDATE ON deliveries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_deliveries_updated();
