-- Work shared by the nodes of a cluster: who does the once-per-cluster work, and the rate
-- limits every node counts against.

-- One row per kind of once-per-cluster work (the chat timers, the unsent-file sweeper): the
-- node that holds it and until when, by the database's clock. A node takes a lease that has
-- run out (or is its own) and renews it every third of its length; a node that dies loses it
-- when it runs out, one that shuts down gives it back at once.
CREATE TABLE cluster_leases (
    name        TEXT PRIMARY KEY,
    -- The holding node's id (random per start, so two nodes never share one).
    holder      TEXT NOT NULL,
    -- Milliseconds since the epoch, the database's clock.
    expires_at  INTEGER NOT NULL,
    -- When this holder took it (renewals keep it), for /metrics and the curious.
    acquired_at INTEGER NOT NULL
);

-- Rate-limit windows counted by every node (on Postgres; a single SQLite node counts in
-- memory): one row per limit and key (an account, a client address, a customer), its window
-- starting at the first attempt, as the in-memory limiter counts. Rows whose window has ended
-- are swept.
CREATE TABLE rate_counters (
    -- Which limit: login_account, login_address, customer_messages, ...
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    -- Milliseconds since the epoch.
    window_start INTEGER NOT NULL,
    attempts     INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE INDEX rate_counters_window ON rate_counters (window_start);
