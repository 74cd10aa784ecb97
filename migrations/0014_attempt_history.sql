-- The attempts from before partitioning join the table again as the range below the
-- first day (0013). Attaching checks every row's range; it locks only the history and the
-- default partition while it does, so attempts are written meanwhile.
SET LOCAL lock_timeout = '10s';
DO $$
BEGIN
    EXECUTE format('ALTER TABLE delivery_attempts ATTACH PARTITION delivery_attempts_history FOR VALUES FROM (MINVALUE) TO (%L)',
        herald_first_attempt_day());
END
$$;
DROP FUNCTION herald_first_attempt_day();
