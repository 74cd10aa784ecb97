-- Retention deletes each source's webhooks of one status older than that status's age:
-- a range of this index per (source, status), however many webhooks of other statuses
-- the source keeps for longer.
CREATE INDEX inbound_webhooks_retention ON inbound_webhooks (source_id, status, received_at);
