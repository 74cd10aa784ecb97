-- The last two foreign keys a store batch checked row by row: events to tenants and
-- deliveries to endpoints (a query of its own per row, finding the parent and locking it),
-- about a tenth of PostgreSQL's CPU per delivery in the end-to-end benchmark. A batch now
-- locks each of its endpoints once (FOR KEY SHARE, as the foreign key did) and inserts
-- deliveries only for those it locked; deleting an endpoint waits for those locks, then
-- deletes its deliveries and their attempts in a second statement, which sees every batch
-- that stored some. Herald deletes no tenant (and the worker parks an event whose tenant
-- its directory does not know); events of a tenant deleted by hand stay until retention
-- deletes them.
-- Dropping a key locks both of its tables: each lock waits at most 10 s for a long reader;
-- then the migration fails, and the next start tries again.
SET LOCAL lock_timeout = '10s';
ALTER TABLE events DROP CONSTRAINT events_tenant_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_endpoint_id_fkey;
