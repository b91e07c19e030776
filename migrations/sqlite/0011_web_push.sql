-- Web Push: a browser is a push device too. Its `token` is the subscription's endpoint (an
-- https URL of the browser's push service) and its `app_id` the web app's origin; what the
-- payload is encrypted for (RFC 8291) comes with the subscription and is kept here.
--
-- SQLite cannot change a CHECK constraint, so the table is rebuilt as migration 8 rebuilds
-- `agents` (https://www.sqlite.org/lang_altertable.html#otheralter): migrations run with
-- foreign keys off, and the keys are checked before this one commits.
PRAGMA legacy_alter_table = ON;

CREATE TABLE push_devices_rebuilt (
    id              TEXT PRIMARY KEY,
    agent_id        TEXT NOT NULL REFERENCES agents (id),
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    platform        TEXT NOT NULL CHECK (platform IN ('IOS', 'ANDROID', 'WEB')),
    token           TEXT NOT NULL UNIQUE,
    app_id          TEXT NOT NULL,
    environment     TEXT NOT NULL CHECK (environment IN ('SANDBOX', 'PRODUCTION')),
    locale          TEXT,
    device_name     TEXT,
    -- Why the provider refused the token; such devices get nothing.
    disabled_reason TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    -- A browser's P-256 public key (`p256dh`) and authentication secret (`auth`), base64url;
    -- both set exactly for WEB devices.
    web_push_p256dh TEXT,
    web_push_auth   TEXT,
    CHECK ((platform = 'WEB') = (web_push_p256dh IS NOT NULL AND web_push_auth IS NOT NULL))
);
INSERT INTO push_devices_rebuilt (id, agent_id, organization_id, platform, token, app_id,
    environment, locale, device_name, disabled_reason, created_at, updated_at)
SELECT id, agent_id, organization_id, platform, token, app_id, environment, locale,
    device_name, disabled_reason, created_at, updated_at
FROM push_devices;
DROP TABLE push_devices;
ALTER TABLE push_devices_rebuilt RENAME TO push_devices;

CREATE INDEX push_devices_agent ON push_devices (agent_id);

PRAGMA legacy_alter_table = OFF;

-- Fails the migration (and rolls it back) if any push job now points at a missing device.
CREATE TEMP TABLE push_devices_rebuild_check (violations INTEGER NOT NULL CHECK (violations = 0));
INSERT INTO push_devices_rebuild_check SELECT COUNT(*) FROM pragma_foreign_key_check;
DROP TABLE push_devices_rebuild_check;
