-- The most requests per second an endpoint receives from all workers together; NULL: no
-- limit. Each live worker sends its share (the limit divided by the workers consuming).
ALTER TABLE endpoints ADD COLUMN rate_limit integer CHECK (rate_limit BETWEEN 1 AND 10000);
