-- Reports: per-chat bookkeeping the reports aggregate, kept on the write path so no report
-- reads a transcript, and the indexes the reports scan.

-- When the chat first got an assignee (assigned_at is the latest assignment): queue wait.
ALTER TABLE chats ADD COLUMN first_assigned_at INTEGER;
-- Customer message runs an agent's public reply answered, and their summed waits (from the
-- run's first customer message to the reply, milliseconds): response time.
ALTER TABLE chats ADD COLUMN response_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chats ADD COLUMN response_total_ms INTEGER NOT NULL DEFAULT 0;
-- The first customer message of the run waiting for a reply, once the chat had one; before
-- its first reply a chat's run starts at created_at. NULL: nothing waits.
ALTER TABLE chats ADD COLUMN reply_run_since INTEGER;

-- Chats from before: their latest assignment is the best known first one.
UPDATE chats SET first_assigned_at = assigned_at WHERE assigned_at IS NOT NULL;

-- Reports read an organization's chats by when they started: index chats_started (0005).
-- Greetings shown and answered in a period.
CREATE INDEX greetings_shown ON greetings (organization_id, shown_at);
CREATE INDEX greetings_answered ON greetings (organization_id, answered_at);
