-- Chats: customers, chats with their transcript, the per-agent event feed, offline messages,
-- and the organization settings and agent presence that routing needs.

-- Every threshold and timeout of routing, tunable per organization (seconds).
ALTER TABLE organizations ADD COLUMN auto_transfer_seconds INTEGER NOT NULL DEFAULT 180;
ALTER TABLE organizations ADD COLUMN waiting_long_seconds INTEGER NOT NULL DEFAULT 40;
ALTER TABLE organizations ADD COLUMN customer_idle_seconds INTEGER NOT NULL DEFAULT 600;
ALTER TABLE organizations ADD COLUMN auto_close_seconds INTEGER NOT NULL DEFAULT 1800;
ALTER TABLE organizations ADD COLUMN presence_grace_seconds INTEGER NOT NULL DEFAULT 60;
ALTER TABLE organizations ADD COLUMN queue_limit INTEGER NOT NULL DEFAULT 100;

-- Routable until then: pushed forward while the agent has a live connection, set to
-- now + grace period when the last one closes. NULL: never connected.
ALTER TABLE agents ADD COLUMN presence_expires_at INTEGER;
-- Ties in routing go to the agent longest without an assignment.
ALTER TABLE agents ADD COLUMN last_assigned_at INTEGER;
-- The last sequence number of the agent's feed (agent_feed.seq).
ALTER TABLE agents ADD COLUMN feed_seq INTEGER NOT NULL DEFAULT 0;

-- Website visitors and Messenger users. visitor_id is the widget's id for the browser.
CREATE TABLE customers (
    id                 TEXT PRIMARY KEY,
    organization_id    TEXT NOT NULL REFERENCES organizations (id),
    visitor_id         TEXT NOT NULL,
    name               TEXT,
    email              TEXT,
    location           TEXT,
    ip_address         TEXT,
    current_page_url   TEXT,
    current_page_title TEXT,
    referrer           TEXT,
    user_agent         TEXT,
    visits             INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    last_seen_at       INTEGER NOT NULL,
    UNIQUE (organization_id, visitor_id)
);

-- The pages a customer viewed, newest last.
CREATE TABLE page_views (
    id          TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    url         TEXT NOT NULL,
    title       TEXT,
    viewed_at   INTEGER NOT NULL
);
CREATE INDEX page_views_customer ON page_views (customer_id, viewed_at);

-- Conversations. status QUEUED waits for an agent (oldest queued_at first), ACTIVE has an
-- assignee, CLOSED is over. last_event_seq numbers the transcript.
CREATE TABLE chats (
    id                        TEXT PRIMARY KEY,
    organization_id           TEXT NOT NULL REFERENCES organizations (id),
    customer_id               TEXT NOT NULL REFERENCES customers (id),
    group_id                  TEXT REFERENCES org_groups (id),
    channel                   TEXT NOT NULL,
    status                    TEXT NOT NULL CHECK (status IN ('QUEUED', 'ACTIVE', 'CLOSED')),
    assignee_id               TEXT REFERENCES agents (id),
    attention                 TEXT NOT NULL DEFAULT 'NORMAL',
    created_at                INTEGER NOT NULL,
    queued_at                 INTEGER,
    assigned_at               INTEGER,
    first_response_at         INTEGER,
    closed_at                 INTEGER,
    rating                    TEXT,
    rating_comment            TEXT,
    awaiting_reply_since      INTEGER,
    last_customer_activity_at INTEGER NOT NULL,
    last_activity_at          INTEGER NOT NULL,
    agent_typing_since        INTEGER,
    last_event_seq            INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX chats_queue ON chats (organization_id, status, queued_at);
CREATE INDEX chats_assignee ON chats (assignee_id, status);
CREATE INDEX chats_customer ON chats (customer_id, created_at);

-- Agents who had a chat before (never routed it again) and supervisors who joined it.
CREATE TABLE chat_participants (
    chat_id   TEXT NOT NULL REFERENCES chats (id),
    agent_id  TEXT NOT NULL REFERENCES agents (id),
    role      TEXT NOT NULL CHECK (role IN ('PREVIOUS_ASSIGNEE', 'SUPERVISOR')),
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (chat_id, agent_id, role)
);
CREATE INDEX chat_participants_agent ON chat_participants (agent_id);

-- The transcript: messages and system events, numbered per chat by seq (the customer's
-- cursor). client_id makes a resent message a no-op.
CREATE TABLE chat_events (
    id              TEXT PRIMARY KEY,
    chat_id         TEXT NOT NULL REFERENCES chats (id),
    organization_id TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    author_kind     TEXT NOT NULL CHECK (author_kind IN ('AGENT', 'CUSTOMER', 'SYSTEM')),
    author_id       TEXT,
    author_name     TEXT,
    text            TEXT NOT NULL,
    client_id       TEXT,
    visibility      TEXT NOT NULL CHECK (visibility IN ('PUBLIC', 'AGENTS')),
    created_at      INTEGER NOT NULL,
    UNIQUE (chat_id, seq)
);
CREATE UNIQUE INDEX chat_events_client_id ON chat_events (chat_id, author_id, client_id)
    WHERE client_id IS NOT NULL;

-- What each agent's apps are told, numbered per agent without gaps (the agent's cursor).
CREATE TABLE agent_feed (
    agent_id   TEXT NOT NULL REFERENCES agents (id),
    seq        INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    chat_id    TEXT,
    event_id   TEXT REFERENCES chat_events (id),
    data       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (agent_id, seq)
);

-- Notes customers leave when nobody accepts chats.
CREATE TABLE offline_messages (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    customer_id     TEXT REFERENCES customers (id),
    group_id        TEXT REFERENCES org_groups (id),
    name            TEXT NOT NULL,
    email           TEXT NOT NULL,
    text            TEXT NOT NULL,
    handled         INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
);
CREATE INDEX offline_messages_organization ON offline_messages (organization_id, created_at);
