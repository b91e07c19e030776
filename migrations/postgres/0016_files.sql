-- Files attached to messages. A file is uploaded into one chat first (event_id NULL), then
-- sent with a message of the same author in that chat, which sets event_id; the bytes live in
-- the file store (the data directory or an S3 bucket) under storage_key.
CREATE TABLE files (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    chat_id         TEXT NOT NULL REFERENCES chats (id),
    -- AGENT or CUSTOMER, and the agent's or customer's id: only they may send it.
    uploader_kind   TEXT NOT NULL,
    uploader_id     TEXT NOT NULL,
    -- As the uploader named it, cleaned of paths and control characters.
    name            TEXT NOT NULL,
    -- Lower case, without parameters; one of the organization's allowed types when uploaded.
    content_type    TEXT NOT NULL,
    -- In bytes.
    size            BIGINT NOT NULL,
    -- Where the bytes are in the file store.
    storage_key     TEXT NOT NULL,
    -- The message it was sent with; NULL while uploaded but not sent.
    event_id        TEXT REFERENCES chat_events (id),
    created_at      BIGINT NOT NULL
);
CREATE INDEX files_event ON files (event_id);
CREATE INDEX files_chat ON files (chat_id);

-- An organization's limits on files; no row means the defaults (10 MB; images, PDF, text and
-- office documents).
CREATE TABLE file_settings (
    organization_id TEXT PRIMARY KEY REFERENCES organizations (id),
    -- The largest file accepted, in bytes.
    max_file_bytes  BIGINT NOT NULL,
    -- The content types accepted, space-separated, lower case.
    allowed_types   TEXT NOT NULL,
    updated_at      BIGINT NOT NULL
);
