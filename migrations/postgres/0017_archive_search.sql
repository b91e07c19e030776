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

-- Words are runs of letters and digits, as SQLite's unicode61 tokenizer cuts them: anything
-- else becomes a space before the 'simple' parser (no stemming, no stop words) sees the text,
-- so that e-mail addresses and URLs split into words on both backends.
CREATE FUNCTION switchboard_search_words(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT regexp_replace($1, '[^[:alnum:]]+', ' ', 'g') $$;

-- One search document per chat: customer is the customer's name and email, body the chat's
-- messages one a line; document is what queries match, kept by the database itself.
CREATE TABLE chat_search (
    chat_id         TEXT PRIMARY KEY REFERENCES chats (id),
    organization_id TEXT NOT NULL,
    customer        TEXT NOT NULL,
    body            TEXT NOT NULL,
    document        tsvector GENERATED ALWAYS AS (
        to_tsvector('simple'::regconfig, switchboard_search_words(customer || ' ' || body))
    ) STORED
);
CREATE INDEX chat_search_document ON chat_search USING GIN (document);

CREATE FUNCTION chat_search_chat_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO chat_search (chat_id, organization_id, customer, body)
    SELECT NEW.id, NEW.organization_id, COALESCE(cu.name, '') || ' ' || COALESCE(cu.email, ''), ''
    FROM customers cu WHERE cu.id = NEW.customer_id;
    RETURN NULL;
END $$;
CREATE TRIGGER chat_search_chat_added AFTER INSERT ON chats
    FOR EACH ROW EXECUTE FUNCTION chat_search_chat_added();

CREATE FUNCTION chat_search_message_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE chat_search SET body = CASE WHEN body = '' THEN NEW.text
                                       ELSE body || E'\n' || NEW.text END
    WHERE chat_id = NEW.chat_id;
    RETURN NULL;
END $$;
CREATE TRIGGER chat_search_message_added AFTER INSERT ON chat_events
    FOR EACH ROW WHEN (NEW.kind = 'MESSAGE') EXECUTE FUNCTION chat_search_message_added();

CREATE FUNCTION chat_search_customer_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE chat_search SET customer = COALESCE(NEW.name, '') || ' ' || COALESCE(NEW.email, '')
    WHERE chat_id IN (SELECT id FROM chats WHERE customer_id = NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER chat_search_customer_changed AFTER UPDATE OF name, email ON customers
    FOR EACH ROW
    WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.email IS DISTINCT FROM NEW.email)
    EXECUTE FUNCTION chat_search_customer_changed();

-- The chats that exist already.
INSERT INTO chat_search (chat_id, organization_id, customer, body)
SELECT c.id, c.organization_id,
       COALESCE(cu.name, '') || ' ' || COALESCE(cu.email, ''),
       COALESCE((SELECT string_agg(e.text, E'\n' ORDER BY e.seq) FROM chat_events e
                 WHERE e.chat_id = c.id AND e.kind = 'MESSAGE'), '')
FROM chats c JOIN customers cu ON cu.id = c.customer_id;
