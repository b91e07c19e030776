-- Tags: labels an organization defines (admins manage them) and agents put on chats, during or
-- after them; the archive and the reports filter by them.
CREATE TABLE tags (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    -- As shown; unique per organization whatever the case.
    name            TEXT NOT NULL,
    -- A CSS colour such as #1a5fd0, or NULL for the default.
    color           TEXT,
    created_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX tags_name ON tags (organization_id, lower(name));

-- The tags on a chat. organization_id is the chat's, so reports filter without a join.
CREATE TABLE chat_tags (
    chat_id         TEXT NOT NULL REFERENCES chats (id),
    tag_id          TEXT NOT NULL REFERENCES tags (id),
    organization_id TEXT NOT NULL,
    -- The agent who added it.
    added_by        TEXT REFERENCES agents (id),
    added_at        INTEGER NOT NULL,
    PRIMARY KEY (chat_id, tag_id)
);
CREATE INDEX chat_tags_tag ON chat_tags (tag_id, chat_id);
