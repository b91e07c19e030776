-- Customer profiles: what agents add to a customer (first name, phone, a note, custom fields),
-- and bans that keep a visitor (and optionally an address) from starting chats.

-- Agent-edited fields; name and email stay in customers, where the widget writes them too.
CREATE TABLE customer_profiles (
    customer_id     TEXT PRIMARY KEY REFERENCES customers (id),
    organization_id TEXT NOT NULL,
    -- NULL: the first word of the customer's name.
    first_name      TEXT,
    phone           TEXT,
    note            TEXT,
    -- A JSON array of {"key": ..., "value": ...}, in the order the agent gave them.
    custom_fields   TEXT NOT NULL DEFAULT '[]',
    updated_at      INTEGER NOT NULL,
    updated_by      TEXT REFERENCES agents (id)
);

-- A ban applies while lifted_at is NULL and expires_at (NULL: until lifted) is in the future.
-- It matches the visitor (customers.visitor_id) and, when set, any visitor from ip_address.
CREATE TABLE customer_bans (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    customer_id     TEXT NOT NULL REFERENCES customers (id),
    visitor_id      TEXT NOT NULL,
    ip_address      TEXT,
    reason          TEXT NOT NULL,
    created_by      TEXT NOT NULL REFERENCES agents (id),
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER,
    lifted_at       INTEGER,
    lifted_by       TEXT REFERENCES agents (id)
);
CREATE INDEX customer_bans_visitor ON customer_bans (organization_id, visitor_id)
    WHERE lifted_at IS NULL;
CREATE INDEX customer_bans_address ON customer_bans (organization_id, ip_address)
    WHERE lifted_at IS NULL AND ip_address IS NOT NULL;
CREATE INDEX customer_bans_customer ON customer_bans (customer_id, created_at);
