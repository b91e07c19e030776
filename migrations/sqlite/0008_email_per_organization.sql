-- An email is unique within an organization, not across the server: a person may be an agent
-- of several companies, and creating an agent or signing up no longer reveals that an email
-- has an account elsewhere. Login tries the accounts with that email.
--
-- SQLite cannot drop a column's UNIQUE constraint, so the table is rebuilt as SQLite's manual
-- prescribes (https://www.sqlite.org/lang_altertable.html#otheralter). Migrations run with
-- foreign keys off (store/sql.rs, migrate), so dropping the old table cascades nowhere;
-- legacy_alter_table keeps the rename from re-checking the triggers of other tables that name
-- `agents` while it is briefly missing; the keys are checked before the migration commits.
PRAGMA legacy_alter_table = ON;

CREATE TABLE agents_rebuilt (
    id                  TEXT PRIMARY KEY,
    organization_id     TEXT NOT NULL REFERENCES organizations (id),
    -- Normalized (trimmed, lower case); unique per organization (index below).
    email               TEXT NOT NULL,
    name                TEXT NOT NULL,
    -- Argon2id PHC string.
    password_hash       TEXT NOT NULL,
    role                TEXT NOT NULL CHECK (role IN ('OWNER', 'ADMIN', 'SUPERVISOR', 'AGENT')),
    routing_status      TEXT NOT NULL DEFAULT 'OFFLINE'
        CHECK (routing_status IN ('ACCEPTING_CHATS', 'NOT_ACCEPTING_CHATS', 'OFFLINE')),
    -- NULL follows the organization's default_chat_limit.
    chat_limit          INTEGER,
    active              INTEGER NOT NULL DEFAULT 1,
    -- NULL until the first login, which makes the agent accept chats.
    last_login_at       INTEGER,
    created_at          INTEGER NOT NULL,
    presence_expires_at INTEGER,
    last_assigned_at    INTEGER,
    feed_seq            INTEGER NOT NULL DEFAULT 0,
    live_until          INTEGER,
    access_changed_at   INTEGER NOT NULL DEFAULT 0
);
INSERT INTO agents_rebuilt (id, organization_id, email, name, password_hash, role,
    routing_status, chat_limit, active, last_login_at, created_at, presence_expires_at,
    last_assigned_at, feed_seq, live_until, access_changed_at)
SELECT id, organization_id, email, name, password_hash, role, routing_status, chat_limit,
    active, last_login_at, created_at, presence_expires_at, last_assigned_at, feed_seq,
    live_until, access_changed_at
FROM agents;
DROP TABLE agents;
ALTER TABLE agents_rebuilt RENAME TO agents;

CREATE INDEX agents_organization ON agents (organization_id);
CREATE UNIQUE INDEX agents_organization_email ON agents (organization_id, email);
CREATE INDEX agents_email ON agents (email);
CREATE INDEX agents_access_changed ON agents (access_changed_at);
CREATE TRIGGER agents_access_changed AFTER UPDATE ON agents
WHEN OLD.role IS NOT NEW.role OR OLD.active IS NOT NEW.active
    OR OLD.password_hash IS NOT NEW.password_hash
BEGIN
    UPDATE agents SET access_changed_at = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    WHERE id = NEW.id;
END;

PRAGMA legacy_alter_table = OFF;

-- Fails the migration (and rolls it back) if any row now points at a missing agent.
CREATE TEMP TABLE agents_rebuild_check (violations INTEGER NOT NULL CHECK (violations = 0));
INSERT INTO agents_rebuild_check SELECT COUNT(*) FROM pragma_foreign_key_check;
DROP TABLE agents_rebuild_check;
