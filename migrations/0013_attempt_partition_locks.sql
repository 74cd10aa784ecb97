-- Where the day partitions begin: the history partition ends there.
CREATE FUNCTION herald_first_attempt_day() RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        min(to_date(substr(c.relname, 20), 'YYYYMMDD'))::timestamp AT TIME ZONE 'UTC',
        (now() AT TIME ZONE 'UTC')::date::timestamp AT TIME ZONE 'UTC')
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'delivery_attempts'::regclass AND c.relname ~ '^delivery_attempts_p[0-9]{8}$'
$$;

-- Attempts recorded before 0012 sit in the default partition, which PostgreSQL scans
-- whenever a day's partition is made (to prove none of its rows belong there), holding
-- the table meanwhile. That partition becomes `delivery_attempts_history` and an empty one
-- takes its place; the few rows of days that have a partition of their own by now move
-- there (found by the index). Moving the old rows would lock the table while they copy:
-- the history is detached here and attached again by 0014, in a transaction of its own
-- that lets writers in while it checks the rows' range. Each lock waits at most 10 s for
-- a long reader; then the migration fails, and the next start tries again.
SET LOCAL lock_timeout = '10s';
ALTER TABLE delivery_attempts DETACH PARTITION delivery_attempts_default;
ALTER TABLE delivery_attempts_default RENAME TO delivery_attempts_history;
CREATE TABLE delivery_attempts_default PARTITION OF delivery_attempts DEFAULT;
INSERT INTO delivery_attempts (id, delivery_id, attempt, trigger, request_id, started_at, duration_ms, status_code, response_excerpt, error_class, error_message)
OVERRIDING SYSTEM VALUE
SELECT id, delivery_id, attempt, trigger, request_id, started_at, duration_ms, status_code, response_excerpt, error_class, error_message
FROM delivery_attempts_history WHERE started_at >= herald_first_attempt_day();
DELETE FROM delivery_attempts_history WHERE started_at >= herald_first_attempt_day();

-- Making or dropping a partition locks the whole table: writers queue behind the lock
-- while it waits for a long reader. Each waits at most a second and gives way (the day
-- is made or dropped on a later round; days are made a week ahead).
CREATE OR REPLACE FUNCTION herald_make_attempt_partitions(ahead integer, since date DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
    day date;
    name text;
    made integer := 0;
BEGIN
    PERFORM set_config('lock_timeout', '1s', true);
    FOR day IN SELECT generate_series(coalesce(since, today), today + ahead, interval '1 day')::date LOOP
        name := 'delivery_attempts_p' || to_char(day, 'YYYYMMDD');
        CONTINUE WHEN to_regclass(name) IS NOT NULL;
        BEGIN
            EXECUTE format('CREATE TABLE %I PARTITION OF delivery_attempts FOR VALUES FROM (%L) TO (%L)',
                name, day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
            made := made + 1;
        EXCEPTION
            WHEN check_violation OR duplicate_table OR unique_violation OR invalid_object_definition THEN
                -- Rows of that day already in the default partition, a concurrent maker,
                -- or a day the history partition covers: the day stays where it is.
                NULL;
            WHEN lock_not_available THEN
                RETURN made;
        END;
    END LOOP;
    RETURN made;
END
$$;

CREATE OR REPLACE FUNCTION herald_drop_attempt_partitions(cutoff timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped integer := 0;
BEGIN
    PERFORM set_config('lock_timeout', '1s', true);
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'delivery_attempts'::regclass AND c.relname ~ '^delivery_attempts_p[0-9]{8}$'
    LOOP
        IF (to_date(substr(part.relname, 20), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC' <= cutoff THEN
            BEGIN
                EXECUTE format('DROP TABLE IF EXISTS %I', part.relname);
                dropped := dropped + 1;
            EXCEPTION WHEN lock_not_available THEN
                RETURN dropped;
            END;
        END IF;
    END LOOP;
    RETURN dropped;
END
$$;
