-- The archive's search index, one row per message instead of one document per chat: a new
-- message adds its own row (its words only) where it used to rewrite its chat's whole
-- document and tsvector, so the 150th message of a chat no longer re-tokenizes the 149 before
-- it, and long chats are no longer cut at a tsvector's 16,383 positions. Each chat also has
-- one row for its customer's name and email. A phrase matches within one row; the archive
-- ANDs a search's terms and applies its exclusions per chat.

DROP TRIGGER chat_search_chat_added ON chats;
DROP TRIGGER chat_search_message_added ON chat_events;
DROP TRIGGER chat_search_customer_changed ON customers;
DROP FUNCTION chat_search_chat_added();
DROP FUNCTION chat_search_message_added();
DROP FUNCTION chat_search_customer_changed();
DROP TABLE chat_search;

CREATE TABLE chat_search_rows (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chat_id         TEXT NOT NULL REFERENCES chats (id),
    organization_id TEXT NOT NULL,
    -- The message or note; NULL for the chat's row of its customer's name and email.
    event_id        TEXT REFERENCES chat_events (id),
    text            TEXT NOT NULL,
    document        tsvector GENERATED ALWAYS AS (
        to_tsvector('simple'::regconfig, switchboard_search_words(text))
    ) STORED
);
CREATE INDEX chat_search_rows_document ON chat_search_rows USING GIN (document);
CREATE INDEX chat_search_rows_chat ON chat_search_rows (chat_id);

CREATE FUNCTION chat_search_chat_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO chat_search_rows (chat_id, organization_id, text)
    SELECT NEW.id, NEW.organization_id, COALESCE(cu.name, '') || ' ' || COALESCE(cu.email, '')
    FROM customers cu WHERE cu.id = NEW.customer_id;
    RETURN NULL;
END $$;
CREATE TRIGGER chat_search_chat_added AFTER INSERT ON chats
    FOR EACH ROW EXECUTE FUNCTION chat_search_chat_added();

CREATE FUNCTION chat_search_message_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO chat_search_rows (chat_id, organization_id, event_id, text)
    VALUES (NEW.chat_id, NEW.organization_id, NEW.id, NEW.text);
    RETURN NULL;
END $$;
CREATE TRIGGER chat_search_message_added AFTER INSERT ON chat_events
    FOR EACH ROW WHEN (NEW.kind = 'MESSAGE' AND NEW.text <> '')
    EXECUTE FUNCTION chat_search_message_added();

CREATE FUNCTION chat_search_customer_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE chat_search_rows SET text = COALESCE(NEW.name, '') || ' ' || COALESCE(NEW.email, '')
    WHERE event_id IS NULL AND chat_id IN (SELECT id FROM chats WHERE customer_id = NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER chat_search_customer_changed AFTER UPDATE OF name, email ON customers
    FOR EACH ROW
    WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.email IS DISTINCT FROM NEW.email)
    EXECUTE FUNCTION chat_search_customer_changed();

-- The chats that exist already.
INSERT INTO chat_search_rows (chat_id, organization_id, text)
SELECT c.id, c.organization_id, COALESCE(cu.name, '') || ' ' || COALESCE(cu.email, '')
FROM chats c JOIN customers cu ON cu.id = c.customer_id ORDER BY c.created_at, c.id;
INSERT INTO chat_search_rows (chat_id, organization_id, event_id, text)
SELECT chat_id, organization_id, id, text FROM chat_events
WHERE kind = 'MESSAGE' AND text <> '' ORDER BY created_at, chat_id, seq;
