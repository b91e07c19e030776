-- When an agent's access last changed: a session ended, or the agent's role, groups, password
-- or active flag changed. Every node polls this column to close the WebSockets and re-check the
-- streams of agents whose rights changed elsewhere (a bus message only makes it faster), so it is
-- kept by triggers, in the same transaction as the change, whichever code made it.
-- Milliseconds since the Unix epoch; 0 until the first change.
ALTER TABLE agents ADD COLUMN access_changed_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX agents_access_changed ON agents (access_changed_at);

CREATE FUNCTION now_millis() RETURNS BIGINT LANGUAGE sql AS
$$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT $$;

-- Marks the agent's own row before it is written. The WHEN clause keeps the frequent updates
-- that change no access (presence, assignments, routing status) from calling the function.
CREATE FUNCTION agents_access_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.access_changed_at := now_millis();
    RETURN NEW;
END $$;
CREATE TRIGGER agents_access_changed BEFORE UPDATE ON agents
FOR EACH ROW WHEN (OLD.role IS DISTINCT FROM NEW.role OR OLD.active IS DISTINCT FROM NEW.active
    OR OLD.password_hash IS DISTINCT FROM NEW.password_hash)
EXECUTE FUNCTION agents_access_changed();

-- Marks the agent whose session ended or whose groups changed.
CREATE FUNCTION agent_access_touched() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE agents SET access_changed_at = now_millis() WHERE id = OLD.agent_id;
    ELSE
        UPDATE agents SET access_changed_at = now_millis() WHERE id = NEW.agent_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER sessions_revoked AFTER UPDATE OF revoked_at ON sessions
FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
EXECUTE FUNCTION agent_access_touched();
CREATE TRIGGER group_members_added AFTER INSERT ON group_members
FOR EACH ROW EXECUTE FUNCTION agent_access_touched();
CREATE TRIGGER group_members_removed AFTER DELETE ON group_members
FOR EACH ROW EXECUTE FUNCTION agent_access_touched();
