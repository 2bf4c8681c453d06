-- Projects, models and versions: what tokens unlock.
-- A model name is unique within its project, whatever its case.
CREATE UNIQUE INDEX models_stream_name_idx ON models (stream_id, lower(name));
CREATE INDEX versions_stream_idx ON versions (stream_id, created_at);
CREATE INDEX streams_updated_idx ON streams (updated_at, id);
CREATE INDEX users_name_idx ON users (lower(name));
