-- Greetings: a message an agent, or a rule on the agent's behalf, sends to a visitor who is on
-- the site, before any chat. Answering one starts a chat with it as the first agent message.

-- Automatic greetings an admin defines: when a visitor on the site meets every condition set,
-- a greeting goes out in the name of the least-loaded agent of the group who accepts chats.
CREATE TABLE greeting_rules (
    id                  TEXT PRIMARY KEY,
    organization_id     TEXT NOT NULL REFERENCES organizations (id),
    -- What admins call the rule in lists.
    name                TEXT NOT NULL,
    -- FALSE: kept, but never fires.
    enabled             BOOLEAN NOT NULL DEFAULT TRUE,
    -- The greeting, with placeholders ({{visitor.name}}, {{page.title}}, {{agent.name}})
    -- filled in when it fires.
    text                TEXT NOT NULL,
    -- Whose agents may send it and whom an answer is routed to; NULL: any agent.
    group_id            TEXT REFERENCES org_groups (id),
    -- Conditions; NULL: not a condition. The page URL contains this text…
    url_contains        TEXT,
    -- …or matches this regular expression (Rust regex syntax).
    url_pattern         TEXT,
    -- Seconds the visitor has been on the current page.
    min_seconds_on_page INTEGER,
    -- Visits (visitor sessions) the customer has made, this one included.
    min_visits          INTEGER,
    -- The referrer contains this text.
    referrer_contains   TEXT,
    -- The rule greets one visitor at most once in this many hours.
    once_per_hours      INTEGER NOT NULL,
    created_at          BIGINT NOT NULL
);
CREATE INDEX greeting_rules_organization ON greeting_rules (organization_id, created_at);

-- Every greeting sent, and what the visitor did with it: the counts per rule come from here.
CREATE TABLE greetings (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    customer_id     TEXT NOT NULL REFERENCES customers (id),
    -- The agent it is sent as (who then gets the chat when they can take it).
    agent_id        TEXT REFERENCES agents (id),
    -- The agent's name when it was sent, as the visitor sees it.
    agent_name      TEXT,
    -- The rule that sent it; NULL when an agent sent it by hand (or the rule is deleted).
    rule_id         TEXT REFERENCES greeting_rules (id) ON DELETE SET NULL,
    -- The group a chat started from it is routed in; NULL: any.
    group_id        TEXT REFERENCES org_groups (id),
    -- As the visitor reads it, placeholders filled in.
    text            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    -- When it first reached an open page of the visitor.
    shown_at        BIGINT,
    -- When the visitor answered it with startChat, and the chat that started.
    answered_at     BIGINT,
    chat_id         TEXT REFERENCES chats (id),
    -- When the visitor closed it without answering.
    dismissed_at    BIGINT
);
-- A visitor's latest greeting (the one a reloaded page shows again).
CREATE INDEX greetings_customer ON greetings (customer_id, created_at);
-- "Once per N hours": a rule's latest greeting to a visitor; and the counts per rule.
CREATE INDEX greetings_rule ON greetings (rule_id, customer_id, created_at);
