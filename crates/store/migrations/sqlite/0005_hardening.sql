-- Hardening (issue 7).

-- Access codes are now stored under the digest of the whole code, and keep only a digest of their
-- challenge (a legacy plain challenge is a secret). Codes live ten minutes; those issued before
-- this migration are dropped, and a sign-in in flight during the upgrade starts again.
DELETE FROM access_codes;

-- Wrong passwords per (account, client address), so that every replica counts them together.
CREATE TABLE sign_in_failures (
    account TEXT NOT NULL,               -- hex SHA-256 of the normalised email
    address TEXT NOT NULL,               -- the client's IPv4 address or IPv6 /64
    failures BIGINT NOT NULL,
    last_failure_at BIGINT NOT NULL,
    PRIMARY KEY (account, address)
);
CREATE INDEX sign_in_failures_last_idx ON sign_in_failures (last_failure_at);

-- Keys the server derives things from (the CSRF key), shared by every replica.
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Which one-time data migrations done in Rust (such as email normalisation) have run.
CREATE TABLE data_migrations (
    name TEXT PRIMARY KEY,
    done_at BIGINT NOT NULL
);
