-- Core tables of the delivery pipeline.
-- A tenant's endpoints receive the tenant's events; one delivery per (event, endpoint),
-- one attempt row per HTTP request made for a delivery.

CREATE TABLE tenants (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE endpoints (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id                   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url                         text NOT NULL,
    description                 text NOT NULL DEFAULT '',
    -- Event types and wildcards (`invoice.*`, `*`) the endpoint subscribes to.
    event_types                 text[] NOT NULL DEFAULT '{}',
    -- Attribute filters: {"workspace": ["w1", "w2"]}; every key must match.
    filters                     jsonb NOT NULL DEFAULT '{}',
    custom_headers              jsonb NOT NULL DEFAULT '{}',
    payload_format              text NOT NULL DEFAULT 'raw' CHECK (payload_format IN ('raw', 'envelope')),
    secret                      text NOT NULL,
    previous_secret             text,
    previous_secret_expires_at  timestamptz,
    enabled                     boolean NOT NULL DEFAULT false,
    dpa_confirmed_at            timestamptz,
    dpa_confirmed_by            text,
    disabled_at                 timestamptz,
    disabled_reason             text,
    consecutive_failures        integer NOT NULL DEFAULT 0,
    first_failure_at            timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    -- No endpoint is enabled before its DPA is confirmed.
    CONSTRAINT endpoints_enabled_needs_dpa CHECK (NOT enabled OR dpa_confirmed_at IS NOT NULL)
);
-- The worker's subscription lookup: a tenant's enabled endpoints.
CREATE INDEX endpoints_tenant ON endpoints (tenant_id, enabled);

CREATE TABLE events (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           text NOT NULL CHECK (length(id) BETWEEN 1 AND 200),
    type         text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    -- `json`, not `jsonb`: the exact bytes that are sent and signed, on every attempt.
    data         json NOT NULL,
    attributes   jsonb NOT NULL DEFAULT '{}',
    received_at  timestamptz NOT NULL DEFAULT now(),
    -- Stored once per tenant and producer-chosen id: a republished event is the same event.
    PRIMARY KEY (tenant_id, id)
);
-- Retention deletes by age.
CREATE INDEX events_received_at ON events (received_at);

CREATE TABLE deliveries (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id         uuid NOT NULL,
    event_id          text NOT NULL,
    endpoint_id       uuid NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    -- Sent as X-Herald-Request-ID and webhook-id; the same on every automatic retry.
    request_id        uuid NOT NULL DEFAULT gen_random_uuid(),
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'retrying', 'delivered', 'failed', 'skipped')),
    -- Attempts started (claimed); an attempt is claimed before its HTTP request.
    attempts          integer NOT NULL DEFAULT 0,
    claimed_at        timestamptz,
    next_attempt_at   timestamptz,
    last_status_code  integer,
    last_error_class  text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    delivered_at      timestamptz,
    FOREIGN KEY (tenant_id, event_id) REFERENCES events (tenant_id, id) ON DELETE CASCADE,
    -- One delivery per (event, endpoint): redelivered or republished events add none.
    CONSTRAINT deliveries_once UNIQUE (endpoint_id, tenant_id, event_id)
);
-- The delivery log, newest first, per endpoint and per tenant.
CREATE INDEX deliveries_endpoint_time ON deliveries (endpoint_id, created_at DESC, id DESC);
CREATE INDEX deliveries_tenant_time ON deliveries (tenant_id, created_at DESC, id DESC);
CREATE INDEX deliveries_event ON deliveries (tenant_id, event_id);

CREATE TABLE delivery_attempts (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id       uuid NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt           integer NOT NULL CHECK (attempt >= 1),
    trigger           text NOT NULL CHECK (trigger IN ('automatic', 'manual')),
    request_id        uuid NOT NULL,
    started_at        timestamptz NOT NULL,
    duration_ms       integer NOT NULL CHECK (duration_ms >= 0),
    status_code       integer,
    -- The first 4 KiB of the response body, for the delivery log.
    response_excerpt  text,
    error_class       text CHECK (error_class IN ('timeout', 'connect', 'dns', 'tls', 'http', 'blocked', 'network')),
    error_message     text
);
-- A delivery's attempts in order; retention deletes by age.
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, attempt);
CREATE INDEX delivery_attempts_started_at ON delivery_attempts (started_at);
