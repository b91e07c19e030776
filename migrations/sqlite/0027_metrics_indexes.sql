-- What /metrics reads on every scrape, per organization, kept to a look at the live rows.

-- Active and queued chats: the open ones only, not every chat ever held.
CREATE INDEX chats_open ON chats (organization_id, status) WHERE status IN ('QUEUED', 'ACTIVE');

-- Agents accepting chats now.
CREATE INDEX agents_accepting ON agents (organization_id) WHERE routing_status = 'ACCEPTING_CHATS';
