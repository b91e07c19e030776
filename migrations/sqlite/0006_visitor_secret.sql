-- The SHA-256 (hex) of the secret a customer's widget keeps, issued with their first visitor
-- session. A later session with the customer's visitor_id must present the secret; without it
-- (or with a wrong one) it gets a new customer, so a visitor_id alone, which agents can read,
-- opens nobody's chats. NULL for customers from before secrets: the next session claims them.
ALTER TABLE customers ADD COLUMN visitor_secret_hash TEXT;
