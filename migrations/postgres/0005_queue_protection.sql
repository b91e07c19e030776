-- Queue protection: a chat whose customer has gone leaves the queue, and an organization
-- takes a bounded number of new chats per minute, so a flood cannot fill the queue.

-- A queued chat leaves the queue once its customer has had no live chatEvents subscription
-- and done nothing (message, typing) for this long (seconds).
ALTER TABLE organizations ADD COLUMN queue_abandon_seconds INTEGER NOT NULL DEFAULT 180;
-- At most this many chats may start in the organization within a minute; more are refused
-- with RATE_LIMITED.
ALTER TABLE organizations ADD COLUMN new_chats_per_minute INTEGER NOT NULL DEFAULT 60;

-- When the customer of a queued chat was last known to be connected: renewed every few
-- seconds while their chatEvents subscription is open. NULL: never subscribed.
ALTER TABLE chats ADD COLUMN customer_seen_at BIGINT;

-- Counts the chats an organization started within the last minute, for the cap above.
CREATE INDEX chats_started ON chats (organization_id, created_at);

-- The timers look for abandoned queued chats every second: this keeps that a look at the
-- queue, not a scan of every chat ever held.
CREATE INDEX chats_waiting ON chats (organization_id) WHERE status = 'QUEUED';
