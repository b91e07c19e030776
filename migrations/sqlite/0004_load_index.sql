-- An agent's load (active chats that are not idle) and unread count (active chats awaiting a
-- reply) are counted on every routing decision and every push. With the columns they test in
-- the index, counting reads the index alone instead of one table row per chat.
CREATE INDEX chats_assignee_load ON chats (assignee_id, status, attention, awaiting_reply_since);
DROP INDEX chats_assignee;
