-- `delivery_attempts`, the largest table (a row per attempt), becomes range-partitioned
-- by `started_at`, a partition a day: housekeeping creates the coming days' partitions and
-- drops whole days past the retention instead of deleting their rows. Rows outside every
-- day's partition (the attempts recorded before this migration, or on a day whose
-- partition was missing) go to the default partition, which retention still deletes in
-- batches. Every existing row is copied, with its id.
ALTER TABLE delivery_attempts RENAME TO delivery_attempts_before_partitioning;
ALTER INDEX delivery_attempts_pkey RENAME TO delivery_attempts_before_partitioning_pkey;
ALTER INDEX delivery_attempts_delivery RENAME TO delivery_attempts_before_partitioning_delivery;
ALTER INDEX delivery_attempts_started_at RENAME TO delivery_attempts_before_partitioning_started_at;

CREATE TABLE delivery_attempts (
    id                bigint GENERATED ALWAYS AS IDENTITY,
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
    error_message     text,
    PRIMARY KEY (id, started_at)
) PARTITION BY RANGE (started_at);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, attempt);
CREATE INDEX delivery_attempts_started_at ON delivery_attempts (started_at);
CREATE TABLE delivery_attempts_default PARTITION OF delivery_attempts DEFAULT;

-- Housekeeping's two steps, here so that every replica of the API runs the same: the
-- partitions of today and the next `ahead` days (UTC), made unless they exist (or unless
-- the default partition already holds rows of that day, which then stay there) ...
CREATE FUNCTION herald_make_attempt_partitions(ahead integer, since date DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
    day date;
    name text;
    made integer := 0;
BEGIN
    FOR day IN SELECT generate_series(coalesce(since, today), today + ahead, interval '1 day')::date LOOP
        name := 'delivery_attempts_p' || to_char(day, 'YYYYMMDD');
        CONTINUE WHEN to_regclass(name) IS NOT NULL;
        BEGIN
            EXECUTE format('CREATE TABLE %I PARTITION OF delivery_attempts FOR VALUES FROM (%L) TO (%L)',
                name, day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
            made := made + 1;
        EXCEPTION WHEN check_violation OR duplicate_table OR unique_violation THEN
            NULL;
        END;
    END LOOP;
    RETURN made;
END
$$;

-- ... and the day partitions that end before `cutoff`, dropped whole.
CREATE FUNCTION herald_drop_attempt_partitions(cutoff timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped integer := 0;
BEGIN
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'delivery_attempts'::regclass AND c.relname ~ '^delivery_attempts_p[0-9]{8}$'
    LOOP
        IF (to_date(substr(part.relname, 20), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC' <= cutoff THEN
            EXECUTE format('DROP TABLE IF EXISTS %I', part.relname);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END
$$;

SELECT herald_make_attempt_partitions(7, (now() AT TIME ZONE 'UTC')::date - 1);

INSERT INTO delivery_attempts (id, delivery_id, attempt, trigger, request_id, started_at, duration_ms, status_code, response_excerpt, error_class, error_message)
OVERRIDING SYSTEM VALUE
SELECT id, delivery_id, attempt, trigger, request_id, started_at, duration_ms, status_code, response_excerpt, error_class, error_message
FROM delivery_attempts_before_partitioning;

DO $$
BEGIN
    EXECUTE format('ALTER TABLE delivery_attempts ALTER COLUMN id RESTART WITH %s',
        (SELECT coalesce(max(id), 0) + 1 FROM delivery_attempts));
END
$$;

DROP TABLE delivery_attempts_before_partitioning;
