-- Staff passwords, as the importer publishes them: an argon2id hash (never the password)
-- and when it was set (epoch ms; 0 = never). Blank for a user without a roster password.
ALTER TABLE {db}.roster_users
    ADD COLUMN IF NOT EXISTS password_hash String DEFAULT '',
    ADD COLUMN IF NOT EXISTS password_set_at UInt64 DEFAULT 0;
