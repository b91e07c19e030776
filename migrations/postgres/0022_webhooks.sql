-- Webhooks: endpoints admins register, and the outbox of deliveries to them.

-- An organization's webhook endpoints. The secret signs every delivery (Standard Webhooks);
-- after a rotation the previous one signs too until previous_secret_expires_at, so receivers
-- can switch over without missing a delivery.
CREATE TABLE webhook_endpoints (
    id                         TEXT PRIMARY KEY,
    organization_id            TEXT NOT NULL REFERENCES organizations (id),
    url                        TEXT NOT NULL,
    description                TEXT,
    -- The event types wanted, as a JSON array of names ("chat.started" …).
    events                     TEXT NOT NULL,
    -- Whether agents' notes (messages only agents see) are sent too.
    include_notes              BOOLEAN NOT NULL DEFAULT FALSE,
    -- WEBHOOK (events as they happen) or INTEGRATION (also a target agents send chats to).
    kind                       TEXT NOT NULL CHECK (kind IN ('WEBHOOK', 'INTEGRATION')),
    enabled                    BOOLEAN NOT NULL,
    secret                     TEXT NOT NULL,
    previous_secret            TEXT,
    previous_secret_expires_at BIGINT,
    -- Failed attempts in a row, and since when: too many, or too long, disables the endpoint.
    consecutive_failures       INTEGER NOT NULL DEFAULT 0,
    failing_since              BIGINT,
    -- Why the server disabled it (an admin disabling it leaves this NULL).
    disabled_reason            TEXT,
    disabled_at                BIGINT,
    created_at                 BIGINT NOT NULL,
    updated_at                 BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_organization ON webhook_endpoints (organization_id);

-- The outbox of webhook deliveries: one row per event and endpoint, written in the
-- transaction of the event. seq orders them: a chat's deliveries to an endpoint go out one
-- after the other, in seq order.
CREATE TABLE webhook_deliveries (
    seq             BIGSERIAL PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    chat_id         TEXT,
    -- The JSON document sent, exactly as signed.
    payload         TEXT NOT NULL,
    -- PENDING, SENDING, DELIVERED or FAILED (given up).
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_until    BIGINT,
    -- The last attempt: the receiver's HTTP status, how long it took, what went wrong.
    response_status INTEGER,
    duration_ms     INTEGER,
    last_error      TEXT,
    -- The agent who sent the chat (send to integration), if one did.
    requested_by    TEXT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, seq);
CREATE INDEX webhook_deliveries_chat ON webhook_deliveries (endpoint_id, chat_id, seq);
