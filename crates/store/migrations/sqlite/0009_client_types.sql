-- An app is a public client (no secret to keep: PKCE proves the code is its own) or a
-- confidential one (a server-side app: its secret is required at the token endpoint). Apps
-- registered before are public, as Speckle's apps behave.
ALTER TABLE server_apps ADD COLUMN confidential BIGINT NOT NULL DEFAULT 0;
