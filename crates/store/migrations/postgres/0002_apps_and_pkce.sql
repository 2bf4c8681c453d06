-- Third-party apps and PKCE.
-- Access codes are kept (marked used) until they expire, so that a second presentation of a code
-- can revoke the tokens its first use issued (RFC 6749 §4.1.2).
ALTER TABLE access_codes ADD COLUMN used_at BIGINT;
ALTER TABLE access_codes ADD COLUMN family_id TEXT;
-- Whether the client proved its secret when the refresh chain was issued. A chain started by a
-- confidential client can only be refreshed with the secret; a public PKCE client's chain can be
-- refreshed with its client id alone (rotation protects it).
ALTER TABLE refresh_tokens ADD COLUMN client_authenticated BIGINT NOT NULL DEFAULT 1;
CREATE INDEX access_codes_user_app_idx ON access_codes (user_id, app_id);
CREATE INDEX server_apps_author_idx ON server_apps (author_id);
