-- Foundation: organizations, agents, groups and sign-in sessions.
-- Ids are UUIDv7 strings; times are milliseconds since the Unix epoch (UTC).

-- One tenant: a company with its agents, widget and chats.
CREATE TABLE organizations (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    -- Public key the web widget sends; safe to embed in pages.
    widget_key         TEXT NOT NULL UNIQUE,
    -- Chat limit of agents who have none of their own.
    default_chat_limit INTEGER NOT NULL,
    created_at         INTEGER NOT NULL
);

-- Support agents. The email is unique across the server: login names no organization.
CREATE TABLE agents (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    email           TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    -- Argon2id PHC string.
    password_hash   TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('OWNER', 'ADMIN', 'SUPERVISOR', 'AGENT')),
    routing_status  TEXT NOT NULL DEFAULT 'OFFLINE'
        CHECK (routing_status IN ('ACCEPTING_CHATS', 'NOT_ACCEPTING_CHATS', 'OFFLINE')),
    -- NULL follows the organization's default_chat_limit.
    chat_limit      INTEGER,
    active          INTEGER NOT NULL DEFAULT 1,
    -- NULL until the first login, which makes the agent accept chats.
    last_login_at   INTEGER,
    created_at      INTEGER NOT NULL
);
CREATE INDEX agents_organization ON agents (organization_id);

-- Departments. Chats may target one; agents belong to any number.
CREATE TABLE org_groups (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (organization_id, name)
);

-- Which agents belong to which groups.
CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES org_groups (id),
    agent_id TEXT NOT NULL REFERENCES agents (id),
    PRIMARY KEY (group_id, agent_id)
);
CREATE INDEX group_members_agent ON group_members (agent_id);

-- One signed-in app of an agent. Revoking it ends every token of its refresh-token family.
CREATE TABLE sessions (
    id             TEXT PRIMARY KEY,
    agent_id       TEXT NOT NULL REFERENCES agents (id),
    created_at     INTEGER NOT NULL,
    last_used_at   INTEGER NOT NULL,
    revoked_at     INTEGER,
    revoked_reason TEXT
);
CREATE INDEX sessions_agent ON sessions (agent_id);

-- Refresh tokens, stored as SHA-256 hex. Each is spent once (rotated_at); presenting a spent
-- one revokes its session, because somebody else holds a copy.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    rotated_at INTEGER
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
