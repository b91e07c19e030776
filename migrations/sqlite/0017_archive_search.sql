-- The archive: every chat listed newest first with filters, and full-text search over each
-- chat's transcript (messages and agents' notes) and its customer's name and email.

-- Keyset paging, newest first, within an organization and within the filters that narrow
-- most: each index answers its equality and the order, so a page reads only its rows.
CREATE INDEX chats_archive ON chats (organization_id, created_at, id);
CREATE INDEX chats_archive_status ON chats (organization_id, status, created_at, id);
CREATE INDEX chats_archive_customer ON chats (organization_id, customer_id, created_at, id);
CREATE INDEX chats_archive_group ON chats (organization_id, group_id, created_at, id);
CREATE INDEX chats_archive_assignee ON chats (organization_id, assignee_id, created_at, id);
CREATE INDEX chat_participants_chat ON chat_participants (chat_id, agent_id);

-- One search document per chat. The FTS5 table's rowid is chat_search_docs.id: an INTEGER
-- PRIMARY KEY, which (unlike the implicit rowid of chats) VACUUM never renumbers.
CREATE TABLE chat_search_docs (
    id              INTEGER PRIMARY KEY,
    chat_id         TEXT NOT NULL UNIQUE REFERENCES chats (id),
    organization_id TEXT NOT NULL
);

-- customer: the customer's name and email; body: the chat's messages, one a line. Diacritics
-- are kept so that tokens are the same as Postgres's 'simple' configuration makes them.
CREATE VIRTUAL TABLE chat_search USING fts5 (
    customer,
    body,
    tokenize = 'unicode61 remove_diacritics 0'
);

CREATE TRIGGER chat_search_chat_added AFTER INSERT ON chats
BEGIN
    INSERT INTO chat_search_docs (chat_id, organization_id) VALUES (new.id, new.organization_id);
    INSERT INTO chat_search (rowid, customer, body)
    SELECT d.id, COALESCE(cu.name, '') || ' ' || COALESCE(cu.email, ''), ''
    FROM chat_search_docs d, customers cu
    WHERE d.chat_id = new.id AND cu.id = new.customer_id;
END;

CREATE TRIGGER chat_search_message_added AFTER INSERT ON chat_events
WHEN new.kind = 'MESSAGE'
BEGIN
    UPDATE chat_search SET body = CASE WHEN body = '' THEN new.text
                                       ELSE body || char(10) || new.text END
    WHERE rowid = (SELECT id FROM chat_search_docs WHERE chat_id = new.chat_id);
END;

CREATE TRIGGER chat_search_customer_changed AFTER UPDATE OF name, email ON customers
WHEN old.name IS NOT new.name OR old.email IS NOT new.email
BEGIN
    UPDATE chat_search SET customer = COALESCE(new.name, '') || ' ' || COALESCE(new.email, '')
    WHERE rowid IN (SELECT d.id FROM chat_search_docs d JOIN chats c ON c.id = d.chat_id
                    WHERE c.customer_id = new.id);
END;

-- The chats that exist already.
INSERT INTO chat_search_docs (chat_id, organization_id)
SELECT id, organization_id FROM chats ORDER BY created_at;
INSERT INTO chat_search (rowid, customer, body)
SELECT d.id,
       COALESCE(cu.name, '') || ' ' || COALESCE(cu.email, ''),
       COALESCE((SELECT group_concat(e.text, char(10) ORDER BY e.seq) FROM chat_events e
                 WHERE e.chat_id = c.id AND e.kind = 'MESSAGE'), '')
FROM chat_search_docs d JOIN chats c ON c.id = d.chat_id JOIN customers cu ON cu.id = c.customer_id;
