-- A delivery is inserted by the statement that inserts its event, and an attempt by the
-- statement that inserts or updates its delivery (Records owns both), so the foreign keys
-- from deliveries to events and from attempts to deliveries checked what the statement
-- had just made: a lookup and a row lock of the parent for every row written, about an
-- eighth of PostgreSQL's CPU per delivery in the end-to-end benchmark. The deletes they
-- cascaded are written out where rows are deleted: retention deletes an event's
-- deliveries and their attempts with it, deleting an endpoint deletes its deliveries'
-- attempts (the deliveries still go by their own key to endpoints, as events go to
-- tenants: those parents are shared and written elsewhere).
ALTER TABLE deliveries DROP CONSTRAINT deliveries_tenant_id_event_id_fkey;
ALTER TABLE delivery_attempts DROP CONSTRAINT delivery_attempts_delivery_id_fkey1;
