-- Tenant API keys for the management API: random, shown once, stored as SHA-256.

CREATE TABLE api_keys (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        text NOT NULL DEFAULT '',
    -- Hex SHA-256 of the key; the key itself is never stored.
    key_hash    text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

-- The delivery log filters by status within an endpoint or tenant, newest first.
CREATE INDEX deliveries_endpoint_status_time ON deliveries (endpoint_id, status, created_at DESC, id DESC);
