-- Receiver profiles: how an endpoint's deliveries are signed (`signature`, the profile and
-- its settings), the envelope's renamed keys (`payload_fields`), two more payload formats,
-- and a filter on the event's data (`payload_filter`, absent: every selected event).
ALTER TABLE endpoints
    ADD COLUMN signature      jsonb NOT NULL DEFAULT '{"profile": "herald"}' CHECK (jsonb_typeof(signature) = 'object'),
    ADD COLUMN payload_fields jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload_fields) = 'object'),
    ADD COLUMN payload_filter jsonb CHECK (payload_filter IS NULL OR jsonb_typeof(payload_filter) = 'object'),
    DROP CONSTRAINT endpoints_payload_format_check,
    ADD CONSTRAINT endpoints_payload_format_check CHECK (payload_format IN ('raw', 'envelope', 'craftdesk', 'customermates'));
