-- Reports: each day's chats kept as one packed row once every chat that started that day
-- (UTC) has closed, so a report over a year reads 365 rows instead of every chat's. The
-- day's row is rebuilt from the chats when anything about them changes: a trigger empties
-- it, in the same transaction as the change, whichever code made it.

CREATE TABLE report_days (
    organization_id TEXT NOT NULL,
    -- Days since 1970-01-01, UTC: created_at / 86400000.
    day             INTEGER NOT NULL,
    -- The day's chats, packed (store/sql/report_days.rs); NULL: to be built again.
    block           BLOB,
    -- How many chats it holds, for the curious.
    chats           INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (organization_id, day)
);

-- A closed chat changed (a rating after the close, a reopening, its group deleted) or was
-- deleted: its day is built again.
CREATE TRIGGER report_days_chat_changed AFTER UPDATE ON chats
WHEN OLD.status = 'CLOSED'
BEGIN
    INSERT INTO report_days (organization_id, day)
    VALUES (OLD.organization_id, OLD.created_at / 86400000)
    ON CONFLICT (organization_id, day) DO UPDATE SET block = NULL;
END;

CREATE TRIGGER report_days_chat_deleted AFTER DELETE ON chats
BEGIN
    INSERT INTO report_days (organization_id, day)
    VALUES (OLD.organization_id, OLD.created_at / 86400000)
    ON CONFLICT (organization_id, day) DO UPDATE SET block = NULL;
END;

-- A chat was tagged or untagged (tag filters read the day's tags).
CREATE TRIGGER report_days_tag_added AFTER INSERT ON chat_tags
BEGIN
    INSERT INTO report_days (organization_id, day)
    SELECT organization_id, created_at / 86400000 FROM chats WHERE id = NEW.chat_id
    ON CONFLICT (organization_id, day) DO UPDATE SET block = NULL;
END;

CREATE TRIGGER report_days_tag_removed AFTER DELETE ON chat_tags
BEGIN
    INSERT INTO report_days (organization_id, day)
    SELECT organization_id, created_at / 86400000 FROM chats WHERE id = OLD.chat_id
    ON CONFLICT (organization_id, day) DO UPDATE SET block = NULL;
END;
