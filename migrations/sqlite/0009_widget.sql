-- The chat widget: how it looks and speaks for an organization, which sites may embed it, and
-- the secret a shop signs its logged-in customers' ids with.

CREATE TABLE widget_settings (
    organization_id TEXT PRIMARY KEY REFERENCES organizations (id),
    -- JSON: colour, position, title, greeting line, offline text, pre-chat fields, locale and
    -- allowed origins (see domain::WidgetSettings). Absent keys take their defaults.
    settings        TEXT NOT NULL DEFAULT '{}',
    -- HMAC-SHA256 key for visitor identities; generated when an admin first reads it.
    identity_secret TEXT,
    updated_at      INTEGER NOT NULL
);

-- The shop's own id for a customer who proved it with a signed identity: the same customer
-- on every device. NULL for anonymous visitors.
ALTER TABLE customers ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX customers_external_id ON customers (organization_id, external_id)
    WHERE external_id IS NOT NULL;
