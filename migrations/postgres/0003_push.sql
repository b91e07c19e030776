-- Push notifications: agents' devices and preferences, and the outbox of pushes.

-- How long an agent may leave a chat assigned through a push unacknowledged (seconds).
ALTER TABLE organizations ADD COLUMN acceptance_timeout_seconds INTEGER NOT NULL DEFAULT 60;

-- While an agent has a live connection: renewed lease. NULL or past: no app is connected
-- live (pushes then stand in, and assignments wait for an acknowledgement).
ALTER TABLE agents ADD COLUMN live_until BIGINT;

-- Set when a chat is assigned to an agent with no live connection: unacknowledged by then,
-- the chat moves on and the agent stops accepting chats.
ALTER TABLE chats ADD COLUMN acceptance_deadline BIGINT;

-- Phones and tablets that get pushes. A token belongs to one agent at a time.
CREATE TABLE push_devices (
    id              TEXT PRIMARY KEY,
    agent_id        TEXT NOT NULL REFERENCES agents (id),
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    platform        TEXT NOT NULL CHECK (platform IN ('IOS', 'ANDROID')),
    token           TEXT NOT NULL UNIQUE,
    app_id          TEXT NOT NULL,
    environment     TEXT NOT NULL CHECK (environment IN ('SANDBOX', 'PRODUCTION')),
    locale          TEXT,
    device_name     TEXT,
    -- Why the provider refused the token; such devices get nothing.
    disabled_reason TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX push_devices_agent ON push_devices (agent_id);

-- Kinds of push an agent switched off (all are on by default).
CREATE TABLE push_preferences (
    agent_id TEXT NOT NULL REFERENCES agents (id),
    kind     TEXT NOT NULL,
    enabled  BOOLEAN NOT NULL,
    PRIMARY KEY (agent_id, kind)
);

-- The outbox: one row per push and device, written in the transaction of the event that
-- causes it. Workers claim due rows (status PENDING and next_attempt_at passed, or SENDING
-- whose lock ran out after a crash).
CREATE TABLE push_jobs (
    id              TEXT PRIMARY KEY,
    device_id       TEXT NOT NULL REFERENCES push_devices (id),
    agent_id        TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    kind            TEXT NOT NULL,
    chat_id         TEXT,
    message         TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_until    BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX push_jobs_due ON push_jobs (status, next_attempt_at);
CREATE INDEX push_jobs_agent ON push_jobs (agent_id, kind, status);
