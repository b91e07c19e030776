-- How far each agent has read each chat: the transcript seq they last saw. What the customer
-- wrote after it is unread (Chat.unreadCount), on every device of the agent.
CREATE TABLE chat_reads (
    chat_id  TEXT NOT NULL REFERENCES chats (id),
    agent_id TEXT NOT NULL REFERENCES agents (id),
    read_seq BIGINT NOT NULL,
    PRIMARY KEY (chat_id, agent_id)
);
