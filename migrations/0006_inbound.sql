-- Inbound webhooks: sources (one unguessable URL per sending service), every request
-- they receive (stored before the sender gets its 2xx), and the delivery ids seen, so a
-- repeat within the window is acknowledged without being processed twice.

CREATE TABLE inbound_sources (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id             uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                  text NOT NULL,
    -- The sending service, as the tenant names it ("GitHub", "Landingi").
    service               text NOT NULL DEFAULT '',
    -- SHA-256 of the URL's token: what a request is looked up by.
    token_hash            bytea NOT NULL UNIQUE,
    -- The token itself, sealed like endpoint secrets, so the URL can be shown again.
    token                 text NOT NULL,
    -- After a rotation the old URL keeps working until `previous_token_expires_at`.
    previous_token_hash   bytea UNIQUE,
    previous_token_expires_at timestamptz,
    -- {"method": "github"}, {"method": "hmac", "header": …}: see Inbound.Verification.
    verification          jsonb NOT NULL,
    -- The shared secret, token or password of the verification, sealed; '' when none.
    secret                text NOT NULL DEFAULT '',
    -- How a webhook becomes an event; NULL: store only.
    mapping               jsonb,
    -- Where the sender's delivery id is: {"header": "X-GitHub-Delivery"} or {"json_path": "$.id"}.
    dedup                 jsonb,
    dedup_window_seconds  integer NOT NULL DEFAULT 86400,
    max_body_bytes        integer NOT NULL DEFAULT 1048576,
    -- Days kept per status, overriding the deployment's defaults: {"rejected": 7}.
    retention             jsonb NOT NULL DEFAULT '{}',
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inbound_sources_tenant ON inbound_sources (tenant_id, created_at);

CREATE TABLE inbound_webhooks (
    id              uuid PRIMARY KEY,
    source_id       uuid NOT NULL REFERENCES inbound_sources (id) ON DELETE CASCADE,
    tenant_id       uuid NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    status          text NOT NULL CHECK (status IN ('received', 'processed', 'parse_error', 'rejected', 'duplicate')),
    -- Why it was rejected, or what could not be parsed.
    error           text,
    -- The field the parse error is about (a JSON path, a form field, a header).
    error_field     text,
    -- The HTTP status the sender got.
    response_status integer NOT NULL,
    remote_address  text NOT NULL DEFAULT '',
    content_type    text NOT NULL DEFAULT '',
    -- [[name, value], …] without credentials (Authorization, cookies, the source's token).
    headers         jsonb NOT NULL DEFAULT '[]',
    -- The query string without the source's token.
    query           text NOT NULL DEFAULT '',
    -- The exact bytes; NULL when the body was too large to keep.
    body            bytea,
    body_size       bigint NOT NULL DEFAULT 0,
    dedup_key       text,
    duplicate_of    uuid,
    -- The event it produced (processed).
    event_id        text,
    event_type      text,
    processed_at    timestamptz
);
CREATE INDEX inbound_webhooks_source ON inbound_webhooks (source_id, received_at DESC, id DESC);
CREATE INDEX inbound_webhooks_tenant ON inbound_webhooks (tenant_id, received_at DESC, id DESC);
CREATE INDEX inbound_webhooks_received ON inbound_webhooks (received_at);

-- The first webhook of each delivery id per source, until the window ends.
CREATE TABLE inbound_dedup (
    source_id   uuid NOT NULL REFERENCES inbound_sources (id) ON DELETE CASCADE,
    key         text NOT NULL,
    webhook_id  uuid NOT NULL,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (source_id, key)
);
CREATE INDEX inbound_dedup_expires ON inbound_dedup (expires_at);
