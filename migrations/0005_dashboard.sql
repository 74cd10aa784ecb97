-- What the dashboard reads beyond the delivery log: hourly figures per endpoint (so a chart
-- of 7 days never scans millions of attempts), the operator console's sessions, and the
-- worker replicas' heartbeats.

-- Attempts per endpoint and hour, added up from `delivery_attempts` by the API's
-- housekeeping. `latency` counts attempts per duration bucket; the bucket bounds are
-- fixed in the code (`LatencyHistogram.bounds`), the last bucket is open-ended.
CREATE TABLE endpoint_hours (
    endpoint_id  uuid NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    tenant_id    uuid NOT NULL,
    hour         timestamptz NOT NULL,
    -- Answered 2xx / answered otherwise / no answer (timeout, network, refused address).
    succeeded    integer NOT NULL DEFAULT 0,
    rejected     integer NOT NULL DEFAULT 0,
    unanswered   integer NOT NULL DEFAULT 0,
    latency      integer[] NOT NULL,
    PRIMARY KEY (endpoint_id, hour)
);
CREATE INDEX endpoint_hours_tenant ON endpoint_hours (tenant_id, hour);
CREATE INDEX endpoint_hours_hour ON endpoint_hours (hour);

-- Attempts that started before `rolled_until` are counted in `endpoint_hours`. One row;
-- a housekeeper holds it locked while it adds, so two API replicas never count twice.
-- It starts at the oldest attempt kept: an upgraded deployment's history is counted too.
CREATE TABLE attempt_rollup (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    rolled_until  timestamptz NOT NULL
);
INSERT INTO attempt_rollup (rolled_until) SELECT coalesce(min(started_at), now()) FROM delivery_attempts;

-- The operator console's sessions, opened by typing the operator token into a form.
CREATE TABLE console_sessions (
    id_hash     text PRIMARY KEY,
    csrf_token  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- Each worker replica says every few seconds that it lives and what it holds; a row not
-- refreshed for a while is a replica gone (its row is deleted on a graceful stop).
CREATE TABLE worker_heartbeats (
    id           text PRIMARY KEY,
    host         text NOT NULL,
    pid          integer NOT NULL,
    version      text NOT NULL,
    concurrency  integer NOT NULL,
    in_flight    integer NOT NULL,
    consuming    boolean NOT NULL,
    started_at   timestamptz NOT NULL,
    seen_at      timestamptz NOT NULL
);
