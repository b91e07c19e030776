-- Offline messages by email: where an organization wants them sent, the emails waiting to go
-- out (an outbox kind of its own), and agents' replies to offline messages.

-- The address new offline messages go to instead of the agents of the message's group; NULL
-- means those agents' own addresses.
ALTER TABLE organizations ADD COLUMN offline_message_email TEXT;

-- Emails to send through the configured SMTP server, written in the transaction of the event
-- that causes them: a new offline message told to agents (NOTIFICATION), or an agent's reply
-- to the customer (REPLY). Rendered when queued; the worker only sends.
CREATE TABLE email_jobs (
    id                 TEXT PRIMARY KEY,
    organization_id    TEXT NOT NULL REFERENCES organizations (id),
    offline_message_id TEXT NOT NULL REFERENCES offline_messages (id),
    -- NOTIFICATION or REPLY.
    kind               TEXT NOT NULL,
    to_address         TEXT NOT NULL,
    -- The sender's display name (the organization's name); NULL: the configured sender's.
    from_name          TEXT,
    -- Where answers go: the customer's address on a notification, so an agent can answer
    -- from their mail client.
    reply_to           TEXT,
    subject            TEXT NOT NULL,
    body               TEXT NOT NULL,
    -- The Message-ID header, and the In-Reply-To (and References) of a reply.
    message_id         TEXT NOT NULL,
    in_reply_to        TEXT,
    -- PENDING, SENDING (claimed), SENT or DEAD (given up).
    status             TEXT NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at    INTEGER NOT NULL,
    locked_until       INTEGER,
    last_error         TEXT,
    created_at         INTEGER NOT NULL,
    sent_at            INTEGER
);
CREATE INDEX email_jobs_due ON email_jobs (status, next_attempt_at);
CREATE INDEX email_jobs_message ON email_jobs (offline_message_id);

-- Agents' answers to offline messages, kept with the message; each is emailed to the customer
-- by its email job.
CREATE TABLE offline_message_replies (
    id                 TEXT PRIMARY KEY,
    organization_id    TEXT NOT NULL REFERENCES organizations (id),
    offline_message_id TEXT NOT NULL REFERENCES offline_messages (id),
    agent_id           TEXT NOT NULL REFERENCES agents (id),
    -- The agent's name when they replied, as the customer read it.
    agent_name         TEXT NOT NULL,
    text               TEXT NOT NULL,
    email_job_id       TEXT NOT NULL REFERENCES email_jobs (id),
    created_at         INTEGER NOT NULL
);
CREATE INDEX offline_message_replies_message ON offline_message_replies (offline_message_id, created_at);
