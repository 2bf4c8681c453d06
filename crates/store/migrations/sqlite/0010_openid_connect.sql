-- OpenID Connect. An access code remembers the client's nonce and when the person signed in, for
-- the ID token its exchange returns.
ALTER TABLE access_codes ADD COLUMN nonce TEXT;
ALTER TABLE access_codes ADD COLUMN auth_time BIGINT;

-- The keys ID tokens are signed with (docs/ARCHITECTURE.md, "Signing keys"). The newest key whose
-- active_from has come signs; every key is published until its retires_at. Generations are
-- unique, so two replicas rotating at once make one key, not two. The private key is sealed
-- (AES-256-GCM) with the server's key file, never stored in the clear.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    generation BIGINT NOT NULL UNIQUE,
    algorithm TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    sealed_private_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    active_from BIGINT NOT NULL,
    retires_at BIGINT
);
