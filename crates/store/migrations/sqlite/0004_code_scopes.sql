-- What an access code grants: the app's scopes as far as the person (or token) that issued the code
-- holds them. NULL (codes issued before this migration) means the app's scopes.
ALTER TABLE access_codes ADD COLUMN scopes TEXT;
