-- A worker that sends events before storing them (HERALD_DELIVER_BEFORE_STORE=auto) does
-- so only while it is the only live replica, and says so here first: a replica that
-- starts and finds one saying it waits until that one has seen it before consuming.
ALTER TABLE worker_heartbeats ADD COLUMN alone boolean NOT NULL DEFAULT false;
