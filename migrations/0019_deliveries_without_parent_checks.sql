-- A delivery is inserted by the statement that inserts its event (or finds it stored, for
-- an event that comes back), and an attempt is logged for a delivery the worker holds
-- (Records owns both), so the foreign keys from deliveries to events and from attempts to
-- deliveries mostly checked what the statement had just made: a lookup and a row lock of
-- the parent for every row written, about an eighth of PostgreSQL's CPU per delivery in
-- the end-to-end benchmark. The deletes they cascaded are written out where rows are
-- deleted: retention deletes an event's deliveries and their attempts with it, deleting
-- an endpoint deletes its deliveries' attempts (the deliveries still go by their own key
-- to endpoints, as events go to tenants: those parents are shared and written elsewhere).
-- Dropping a key locks both of its tables: each lock waits at most 10 s for a long reader;
-- then the migration fails, and the next start tries again.
SET LOCAL lock_timeout = '10s';
ALTER TABLE deliveries DROP CONSTRAINT deliveries_tenant_id_event_id_fkey;
ALTER TABLE delivery_attempts DROP CONSTRAINT delivery_attempts_delivery_id_fkey1;
