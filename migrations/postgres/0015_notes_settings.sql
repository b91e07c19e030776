-- Teammates' chats: when on, plain agents may read (not answer) the chats of their groups.
ALTER TABLE organizations ADD COLUMN agents_see_group_chats BOOLEAN NOT NULL DEFAULT FALSE;
