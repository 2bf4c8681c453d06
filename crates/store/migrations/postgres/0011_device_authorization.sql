-- RFC 8628 device authorization: a device polls with its device code while the person approves
-- the user code on /device. Only digests of either code are stored. A grant is spent once (its
-- tokens are issued in the transaction that spends it) and forgotten when it expires.
CREATE TABLE device_grants (
    device_digest TEXT PRIMARY KEY,
    user_code_digest TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL REFERENCES server_apps (id) ON DELETE CASCADE,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    lifespan BIGINT NOT NULL,
    interval_ms BIGINT NOT NULL,
    polled_at BIGINT,
    decision TEXT,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    auth_time BIGINT,
    spent_at BIGINT
);
CREATE INDEX device_grants_expiry_idx ON device_grants (created_at);
