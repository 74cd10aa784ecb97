-- The tenant portal's ways in. A CRM (with the operator token) asks for a link; opening it
-- once starts a session scoped to that tenant. Only SHA-256 hashes of the link tokens and
-- session ids are stored: a database dump opens nothing.

CREATE TABLE portal_links (
    token_hash  text PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    read_only   boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);

CREATE TABLE portal_sessions (
    id_hash     text PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    read_only   boolean NOT NULL,
    -- Every form of the session carries it; a POST without it is refused.
    csrf_token  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
-- Housekeeping deletes what expired.
CREATE INDEX portal_links_expiry ON portal_links (expires_at);
CREATE INDEX portal_sessions_expiry ON portal_sessions (expires_at);
