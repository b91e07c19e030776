-- Web Push: a browser is a push device too. Its `token` is the subscription's endpoint (an
-- https URL of the browser's push service) and its `app_id` the web app's origin; what the
-- payload is encrypted for (RFC 8291) comes with the subscription and is kept here.
ALTER TABLE push_devices DROP CONSTRAINT push_devices_platform_check;
ALTER TABLE push_devices ADD CONSTRAINT push_devices_platform_check
    CHECK (platform IN ('IOS', 'ANDROID', 'WEB'));

-- A browser's P-256 public key (`p256dh`) and authentication secret (`auth`), base64url;
-- both set exactly for WEB devices.
ALTER TABLE push_devices ADD COLUMN web_push_p256dh TEXT;
ALTER TABLE push_devices ADD COLUMN web_push_auth TEXT;
ALTER TABLE push_devices ADD CONSTRAINT push_devices_web_push_keys
    CHECK ((platform = 'WEB') = (web_push_p256dh IS NOT NULL AND web_push_auth IS NOT NULL));
