-- Tessera's foundation schema. Dialect-neutral: it runs unchanged on SQLite and PostgreSQL.
-- Times and lifespans are BIGINT milliseconds since the Unix epoch; flags are BIGINT 0/1.
-- Secrets are never stored: tokens, refresh tokens and access codes keep a SHA-256 digest.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    suuid TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,          -- lowercased
    name TEXT NOT NULL,
    bio TEXT,
    company TEXT,
    avatar TEXT,
    verified BIGINT NOT NULL DEFAULT 0,
    profiles TEXT,                       -- JSON object
    password_hash TEXT,                  -- argon2id PHC string
    role TEXT NOT NULL,                  -- server role, e.g. server:user
    created_at BIGINT NOT NULL
);

CREATE TABLE server_apps (
    id TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    terms_and_conditions_link TEXT,
    logo TEXT,
    public BIGINT NOT NULL DEFAULT 0,
    trust_by_default BIGINT NOT NULL DEFAULT 0,
    author_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    redirect_url TEXT NOT NULL,
    scopes TEXT NOT NULL,                -- space-separated scope names
    created_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,                 -- the first 10 characters of the token
    digest TEXT NOT NULL,                -- hex SHA-256 of the 32-character secret
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    last_chars TEXT NOT NULL,
    scopes TEXT NOT NULL,
    kind TEXT NOT NULL,                  -- 'pat' or 'app'
    app_id TEXT REFERENCES server_apps (id) ON DELETE CASCADE,
    family_id TEXT,                      -- the refresh chain an app token was issued from
    lifespan BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used BIGINT NOT NULL
);
CREATE INDEX api_tokens_owner_idx ON api_tokens (owner_id);
CREATE INDEX api_tokens_app_idx ON api_tokens (app_id);
CREATE INDEX api_tokens_family_idx ON api_tokens (family_id);

CREATE TABLE token_resources (
    token_id TEXT NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    resource_type TEXT NOT NULL,         -- 'project' or 'workspace'
    resource_id TEXT NOT NULL,
    PRIMARY KEY (token_id, resource_type, resource_id)
);

CREATE TABLE access_codes (
    digest TEXT PRIMARY KEY,             -- hex SHA-256 of the code's secret part
    app_id TEXT NOT NULL REFERENCES server_apps (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    challenge TEXT NOT NULL,
    challenge_method TEXT NOT NULL DEFAULT 'plain',
    created_at BIGINT NOT NULL,
    lifespan BIGINT NOT NULL
);

CREATE TABLE refresh_tokens (
    id TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    app_id TEXT NOT NULL REFERENCES server_apps (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id TEXT NOT NULL,
    scopes TEXT NOT NULL,                -- what the chain was granted; a refresh never widens it
    used_at BIGINT,                      -- set when rotated; presenting it again revokes the family
    created_at BIGINT NOT NULL,
    lifespan BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_app_idx ON refresh_tokens (user_id, app_id);

CREATE TABLE streams (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT,
    visibility TEXT NOT NULL,            -- PRIVATE, PUBLIC or UNLISTED
    allow_public_comments BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE stream_acl (
    stream_id TEXT NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL,                  -- stream:owner, stream:contributor or stream:reviewer
    PRIMARY KEY (stream_id, user_id)
);
CREATE INDEX stream_acl_user_idx ON stream_acl (user_id);

CREATE TABLE models (
    id TEXT PRIMARY KEY,
    stream_id TEXT NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT,
    author_id TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX models_stream_idx ON models (stream_id);

CREATE TABLE versions (
    id TEXT PRIMARY KEY,
    stream_id TEXT NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    model_id TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    author_id TEXT REFERENCES users (id) ON DELETE SET NULL,
    referenced_object TEXT NOT NULL,
    message TEXT,
    source_application TEXT,
    total_children_count BIGINT,
    parents TEXT,                        -- JSON array of version ids
    created_at BIGINT NOT NULL
);
CREATE INDEX versions_model_idx ON versions (model_id);
CREATE INDEX versions_author_idx ON versions (author_id);
