-- The transactional outbox: a CRM that must never lose an event inserts it here in the
-- same transaction as its own change; `herald relay` publishes pending rows with
-- publisher confirms and marks them sent. A CRM with its own database creates this table
-- there (this file as is) and points HERALD_OUTBOX_DATABASE_URL at it.

CREATE TABLE outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    event_id     text NOT NULL DEFAULT ('evt_' || replace(gen_random_uuid()::text, '-', '')),
    type         text NOT NULL,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    data         json NOT NULL,
    attributes   jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    -- Why a row can never be published (an invalid event); it is not retried.
    error        text
);
-- The relay's scan: pending rows in insertion order.
CREATE INDEX outbox_pending ON outbox (id) WHERE sent_at IS NULL AND error IS NULL;
