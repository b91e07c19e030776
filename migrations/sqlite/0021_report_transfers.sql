-- Reports: whether a chat was ever transferred (it has a previous assignee), kept on the
-- write path beside the other per-chat bookkeeping of 0019, so a report reads it from the
-- covering index instead of probing chat_participants for every chat of the period.

-- 1 once an agent handed the chat on (or lost it to a timer): the chat has a
-- PREVIOUS_ASSIGNEE participant. Participants are never removed, so it never goes back to 0.
ALTER TABLE chats ADD COLUMN transferred INTEGER NOT NULL DEFAULT 0;

-- Chats from before: what their participants say.
UPDATE chats SET transferred = 1
WHERE id IN (SELECT chat_id FROM chat_participants WHERE role = 'PREVIOUS_ASSIGNEE');

-- The covering index of 0020 with the new column, so reports still never visit the table.
DROP INDEX chats_report;
CREATE INDEX chats_report ON chats (
    organization_id, created_at, assignee_id, group_id, status, rating, first_assigned_at,
    first_response_at, closed_at, response_count, response_total_ms, transferred, id
);
