-- The peer's tables: the same rows Herald writes for a delivery (event, delivery, attempt).
CREATE TABLE endpoints (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL,
    url        text NOT NULL,
    secret     text NOT NULL,
    enabled    boolean NOT NULL DEFAULT true
);
CREATE INDEX endpoints_tenant ON endpoints (tenant_id, enabled);
CREATE TABLE events (
    tenant_id    uuid NOT NULL,
    id           text NOT NULL,
    type         text NOT NULL,
    data         json NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE TABLE deliveries (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL,
    event_id          text NOT NULL,
    endpoint_id       uuid NOT NULL REFERENCES endpoints (id),
    status            text NOT NULL,
    attempts          integer NOT NULL,
    last_status_code  integer,
    created_at        timestamptz NOT NULL DEFAULT now(),
    delivered_at      timestamptz,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX deliveries_tenant_time ON deliveries (tenant_id, created_at DESC);
CREATE TABLE delivery_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id  uuid NOT NULL REFERENCES deliveries (id),
    attempt      integer NOT NULL,
    started_at   timestamptz NOT NULL,
    duration_ms  integer NOT NULL,
    status_code  integer,
    error        text
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, attempt);
