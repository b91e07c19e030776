-- An email is unique within an organization, not across the server: a person may be an agent
-- of several companies, and creating an agent or signing up no longer reveals that an email
-- has an account elsewhere. Login tries the accounts with that email.
ALTER TABLE agents DROP CONSTRAINT agents_email_key;
CREATE UNIQUE INDEX agents_organization_email ON agents (organization_id, email);
CREATE INDEX agents_email ON agents (email);
