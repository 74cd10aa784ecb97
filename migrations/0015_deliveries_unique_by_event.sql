-- One index fewer on deliveries, whose every insert and every non-HOT update writes an
-- entry into each of its indexes. Uniqueness of (event, endpoint) is kept by an index that
-- leads with the event, and that index also serves every lookup by event (the store's
-- read-back of a republished event, the cascade from events) that deliveries_event served.
-- Building it holds writes to deliveries back for as long as it takes (seconds per
-- million rows); workers wait and go on.
CREATE UNIQUE INDEX deliveries_once_by_event ON deliveries (tenant_id, event_id, endpoint_id);
ALTER TABLE deliveries DROP CONSTRAINT deliveries_once;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_once UNIQUE USING INDEX deliveries_once_by_event;
DROP INDEX deliveries_event;
