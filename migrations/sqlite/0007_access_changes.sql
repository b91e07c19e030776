-- When an agent's access last changed: a session ended, or the agent's role, groups, password
-- or active flag changed. Every node polls this column to close the WebSockets and re-check the
-- streams of agents whose rights changed elsewhere (a bus message only makes it faster), so it is
-- kept by triggers, in the same transaction as the change, whichever code made it.
-- Milliseconds since the Unix epoch; 0 until the first change.
ALTER TABLE agents ADD COLUMN access_changed_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX agents_access_changed ON agents (access_changed_at);

CREATE TRIGGER agents_access_changed AFTER UPDATE ON agents
WHEN OLD.role IS NOT NEW.role OR OLD.active IS NOT NEW.active
    OR OLD.password_hash IS NOT NEW.password_hash
BEGIN
    UPDATE agents SET access_changed_at = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    WHERE id = NEW.id;
END;

CREATE TRIGGER sessions_revoked AFTER UPDATE OF revoked_at ON sessions
WHEN OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
BEGIN
    UPDATE agents SET access_changed_at = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    WHERE id = NEW.agent_id;
END;

CREATE TRIGGER group_members_added AFTER INSERT ON group_members
BEGIN
    UPDATE agents SET access_changed_at = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    WHERE id = NEW.agent_id;
END;

CREATE TRIGGER group_members_removed AFTER DELETE ON group_members
BEGIN
    UPDATE agents SET access_changed_at = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    WHERE id = OLD.agent_id;
END;
