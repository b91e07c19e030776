-- The archive's search index, one row per message instead of one document per chat: a new
-- message adds its own row (its words only) where it used to rewrite its chat's whole
-- document, so the 150th message of a chat no longer re-tokenizes the 149 before it.
-- Each chat also has one row for its customer's name and email. A phrase matches within one
-- row; the archive ANDs a search's terms and applies its exclusions per chat.

DROP TRIGGER chat_search_chat_added;
DROP TRIGGER chat_search_message_added;
DROP TRIGGER chat_search_customer_changed;
DROP TABLE chat_search;
DROP TABLE chat_search_docs;

-- What each full-text row belongs to. The FTS5 table's rowid is this table's id: an INTEGER
-- PRIMARY KEY, which VACUUM never renumbers.
CREATE TABLE chat_search_rows (
    id              INTEGER PRIMARY KEY,
    chat_id         TEXT NOT NULL REFERENCES chats (id),
    organization_id TEXT NOT NULL,
    -- The message or note; NULL for the chat's row of its customer's name and email.
    event_id        TEXT REFERENCES chat_events (id)
);
CREATE INDEX chat_search_rows_chat ON chat_search_rows (chat_id);

-- Diacritics are kept so that tokens are the same as Postgres's 'simple' configuration
-- makes them.
CREATE VIRTUAL TABLE chat_search_text USING fts5 (
    text,
    tokenize = 'unicode61 remove_diacritics 0'
);

-- last_insert_rowid() is, inside a trigger, the row the trigger itself just inserted.
CREATE TRIGGER chat_search_chat_added AFTER INSERT ON chats
BEGIN
    INSERT INTO chat_search_rows (chat_id, organization_id) VALUES (new.id, new.organization_id);
    INSERT INTO chat_search_text (rowid, text)
    SELECT last_insert_rowid(), COALESCE(cu.name, '') || ' ' || COALESCE(cu.email, '')
    FROM customers cu WHERE cu.id = new.customer_id;
END;

CREATE TRIGGER chat_search_message_added AFTER INSERT ON chat_events
WHEN new.kind = 'MESSAGE' AND new.text <> ''
BEGIN
    INSERT INTO chat_search_rows (chat_id, organization_id, event_id)
    VALUES (new.chat_id, new.organization_id, new.id);
    INSERT INTO chat_search_text (rowid, text) VALUES (last_insert_rowid(), new.text);
END;

CREATE TRIGGER chat_search_customer_changed AFTER UPDATE OF name, email ON customers
WHEN old.name IS NOT new.name OR old.email IS NOT new.email
BEGIN
    UPDATE chat_search_text SET text = COALESCE(new.name, '') || ' ' || COALESCE(new.email, '')
    WHERE rowid IN (SELECT r.id FROM chats c JOIN chat_search_rows r ON r.chat_id = c.id
                    WHERE c.customer_id = new.id AND r.event_id IS NULL);
END;

-- The chats that exist already.
INSERT INTO chat_search_rows (chat_id, organization_id)
SELECT id, organization_id FROM chats ORDER BY created_at, id;
INSERT INTO chat_search_rows (chat_id, organization_id, event_id)
SELECT chat_id, organization_id, id FROM chat_events
WHERE kind = 'MESSAGE' AND text <> '' ORDER BY created_at, chat_id, seq;
INSERT INTO chat_search_text (rowid, text)
SELECT r.id, CASE WHEN r.event_id IS NULL
                  THEN COALESCE(cu.name, '') || ' ' || COALESCE(cu.email, '')
                  ELSE (SELECT e.text FROM chat_events e WHERE e.id = r.event_id) END
FROM chat_search_rows r JOIN chats c ON c.id = r.chat_id JOIN customers cu ON cu.id = c.customer_id;
