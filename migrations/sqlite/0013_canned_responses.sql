-- Canned responses: texts agents insert by typing a #shortcut, shared by the organization or
-- a group (admins manage those) or an agent's own.
CREATE TABLE canned_responses (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    -- Lower case, without the '#': a-z 0-9 _ -.
    shortcut        TEXT NOT NULL,
    -- What the agent's list shows.
    title           TEXT NOT NULL,
    -- As written, with placeholders such as {{customer.first_name}} filled in when used.
    text            TEXT NOT NULL,
    -- ORGANIZATION, GROUP or PERSONAL.
    scope           TEXT NOT NULL,
    -- The group whose agents use it (GROUP only).
    group_id        TEXT REFERENCES org_groups (id),
    -- The agent whose own it is (PERSONAL only).
    owner_id        TEXT REFERENCES agents (id),
    -- Messages sent from it.
    usage_count     INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
-- One shortcut per organization, scope and group or owner; its leading columns also answer
-- the as-you-type prefix search (shortcut >= 'shi' AND shortcut < 'shi~').
CREATE UNIQUE INDEX canned_responses_shortcut
    ON canned_responses (organization_id, shortcut, scope, COALESCE(group_id, owner_id, ''));
