-- The API caches each inbound source it has looked up by its URL's token, so that a
-- sender's request costs no lookup. Every change to a source (its settings, secret, URL,
-- deletion, whoever makes it: the API, the CLI, an operator's SQL, a tenant's cascade) is
-- announced on the channel herald_inbound_sources with the source's id, after the commit;
-- the API drops that source a moment later. While its listener's lease does not hold, the
-- API keeps no source at all and looks each request's source up as before.
CREATE FUNCTION herald_inbound_source_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN
        -- TRUNCATE: every source.
        PERFORM pg_notify('herald_inbound_sources', '*');
    ELSE
        PERFORM pg_notify('herald_inbound_sources', OLD.id::text);
    END IF;
    RETURN NULL;
END
$$;

-- A new source was never cached (unknown tokens are not kept): only updates and deletions.
CREATE TRIGGER inbound_sources_changed AFTER UPDATE OR DELETE ON inbound_sources
    FOR EACH ROW EXECUTE FUNCTION herald_inbound_source_changed();

CREATE TRIGGER inbound_sources_emptied AFTER TRUNCATE ON inbound_sources
    FOR EACH STATEMENT EXECUTE FUNCTION herald_inbound_source_changed();
