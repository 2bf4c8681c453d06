-- Where each browser session was started (the session itself is its web-app token), the access
-- log a user reads under Security -> Activity, and the addresses each token has been used from
-- (so "first use from a new address" is recorded once). Nothing here holds a secret.
CREATE TABLE sessions (
    token_id TEXT PRIMARY KEY REFERENCES api_tokens (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    address TEXT,
    user_agent TEXT,                     -- at most 256 characters, control characters removed
    created_at BIGINT NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE activity (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,                  -- e.g. sign_in, token_created (domain::activity)
    created_at BIGINT NOT NULL,
    address TEXT,
    user_agent TEXT,
    subject TEXT,                        -- what it concerns, by name: a token's or an app's
    subject_id TEXT                      -- and by id (never a secret)
);
CREATE INDEX activity_user_idx ON activity (user_id, created_at, id);
CREATE INDEX activity_created_idx ON activity (created_at);

CREATE TABLE token_addresses (
    token_id TEXT NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    first_used BIGINT NOT NULL,
    PRIMARY KEY (token_id, address)
);

-- What an administrator set under Server (serverInfoUpdate); until then the configuration's
-- [server] table is shown. One row, id 'server', shared by every replica.
CREATE TABLE server_info (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    company TEXT,
    description TEXT,
    admin_contact TEXT,
    terms_of_service TEXT,
    updated_at BIGINT NOT NULL
);
