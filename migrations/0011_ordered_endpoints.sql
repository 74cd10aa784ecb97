-- Ordered (FIFO) endpoints: their deliveries are sent one at a time, in the order their
-- events were stored (a tenant's publish order when workers read sharded work queues).
-- `position` is taken from one sequence when such a delivery is stored; NULL for every
-- other delivery. The partial index finds an endpoint's next open delivery.
ALTER TABLE endpoints ADD COLUMN ordered boolean NOT NULL DEFAULT false;
CREATE SEQUENCE delivery_positions AS bigint;
ALTER TABLE deliveries ADD COLUMN position bigint;
CREATE INDEX deliveries_ordered_open ON deliveries (endpoint_id, position)
    WHERE position IS NOT NULL AND status IN ('pending', 'retrying');
