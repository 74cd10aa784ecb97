-- When a worker opened the endpoint's circuit (its deliveries are held until a probe
-- succeeds); NULL while closed. Written by the worker on each transition, read by the API
-- and the dashboard; each worker's own circuit decides what it sends.
ALTER TABLE endpoints ADD COLUMN circuit_opened_at timestamptz;
