-- Workers cache each tenant's endpoints. Without word of a change they read a tenant
-- again every HERALD_ENDPOINT_CACHE_TTL (5 s), which costs a query per event once a worker
-- serves thousands of tenants. Every change that a worker's endpoint list shows is now
-- announced on the channel herald_directory with the tenant's id (after the commit, once
-- per tenant and transaction), whoever writes it: the API, a worker opening a circuit or
-- disabling an endpoint, an operator's SQL. A listening worker drops that tenant's entry
-- and keeps the others for HERALD_ENDPOINT_CACHE_NOTIFIED_TTL. Columns no worker reads
-- (failure counts, descriptions, timestamps of their own) announce nothing, so the
-- counters a delivery updates cost no notification.
CREATE FUNCTION herald_directory_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN
        -- TRUNCATE: every tenant.
        PERFORM pg_notify('herald_directory', '*');
    ELSIF TG_TABLE_NAME = 'tenants' THEN
        -- Deleted, or its id changed: the old id is no tenant now.
        PERFORM pg_notify('herald_directory', OLD.id::text);
    ELSE
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            PERFORM pg_notify('herald_directory', OLD.tenant_id::text);
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            PERFORM pg_notify('herald_directory', NEW.tenant_id::text);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER endpoints_directory_added_or_removed AFTER INSERT OR DELETE ON endpoints
    FOR EACH ROW EXECUTE FUNCTION herald_directory_changed();

-- The columns the worker's directory reads (FanOut's Directory.read).
CREATE TRIGGER endpoints_directory_changed AFTER UPDATE ON endpoints
    FOR EACH ROW WHEN (
        (OLD.id, OLD.tenant_id, OLD.url, OLD.event_types, OLD.filters, OLD.custom_headers, OLD.payload_format, OLD.secret,
         OLD.previous_secret, OLD.previous_secret_expires_at, OLD.enabled, OLD.disabled_at, OLD.signature,
         OLD.payload_fields, OLD.payload_filter, OLD.circuit_opened_at, OLD.rate_limit, OLD.ordered)
        IS DISTINCT FROM
        (NEW.id, NEW.tenant_id, NEW.url, NEW.event_types, NEW.filters, NEW.custom_headers, NEW.payload_format, NEW.secret,
         NEW.previous_secret, NEW.previous_secret_expires_at, NEW.enabled, NEW.disabled_at, NEW.signature,
         NEW.payload_fields, NEW.payload_filter, NEW.circuit_opened_at, NEW.rate_limit, NEW.ordered))
    EXECUTE FUNCTION herald_directory_changed();

CREATE TRIGGER endpoints_directory_emptied AFTER TRUNCATE ON endpoints
    FOR EACH STATEMENT EXECUTE FUNCTION herald_directory_changed();

-- A tenant's existence is what the directory answers first (an unknown tenant's events are parked).
CREATE TRIGGER tenants_directory_removed AFTER DELETE OR UPDATE OF id ON tenants
    FOR EACH ROW EXECUTE FUNCTION herald_directory_changed();

CREATE TRIGGER tenants_directory_emptied AFTER TRUNCATE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION herald_directory_changed();
