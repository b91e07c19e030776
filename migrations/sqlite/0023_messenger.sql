-- Facebook Messenger: the pages an organization connected, the Messenger users who wrote to
-- them, the message ids already taken in (Facebook redelivers), and the Send API outbox.

-- A connected Facebook Page. Its page id is unique across organizations: the one webhook URL
-- finds the page (and the app secret that signs its events) by it.
CREATE TABLE messenger_pages (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    page_id         TEXT NOT NULL UNIQUE,
    -- The page's name, as the Graph API gave it when the page was connected.
    name            TEXT,
    access_token    TEXT NOT NULL,
    app_secret      TEXT NOT NULL,
    verify_token    TEXT NOT NULL,
    -- Chats from the page go to this group; NULL routes them like any chat of no group.
    group_id        TEXT REFERENCES org_groups (id),
    created_at      INTEGER NOT NULL
);
CREATE INDEX messenger_pages_organization ON messenger_pages (organization_id);

-- A Messenger user (page-scoped id) of a page, and the customer they are.
-- last_message_at (the user's latest message) decides the Send API's messaging window.
CREATE TABLE messenger_customers (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    psid            TEXT NOT NULL,
    page_id         TEXT NOT NULL,
    customer_id     TEXT NOT NULL REFERENCES customers (id),
    profile_pic     TEXT,
    last_message_at INTEGER NOT NULL,
    PRIMARY KEY (organization_id, psid)
);
CREATE UNIQUE INDEX messenger_customers_customer ON messenger_customers (customer_id);

-- Message ids (mid) of incoming messages already taken in: a redelivered one is ignored.
CREATE TABLE messenger_inbound (
    mid         TEXT PRIMARY KEY,
    received_at INTEGER NOT NULL
);

-- The Send API outbox: an agent's message, or a sender action (typing_on, mark_seen), for one
-- Messenger user. status PENDING → SENDING (claimed) → SENT, or FAILED with last_error.
-- delivered_at and read_at come from the user's delivery and read receipts.
CREATE TABLE messenger_sends (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    chat_id         TEXT NOT NULL,
    -- The agent's message (chat_events.id); NULL for a sender action.
    event_id        TEXT UNIQUE,
    page_id         TEXT NOT NULL,
    psid            TEXT NOT NULL,
    -- MESSAGE, TYPING_ON or MARK_SEEN.
    kind            TEXT NOT NULL,
    text            TEXT,
    -- RESPONSE, or MESSAGE_TAG with tag HUMAN_AGENT, decided when the agent sent it.
    messaging_type  TEXT,
    tag             TEXT,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    locked_until    INTEGER,
    last_error      TEXT,
    -- The mid the Send API gave the message.
    mid             TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    delivered_at    INTEGER,
    read_at         INTEGER
);
CREATE INDEX messenger_sends_due ON messenger_sends (status, next_attempt_at);
CREATE INDEX messenger_sends_recipient ON messenger_sends (page_id, psid, status, sent_at);
