-- A spend of a single-use grant (an access code, a refresh token, a device grant) writes the id
-- of the access token it buys into the grant, and the rows it buys are inserted only where the
-- grant names that token. So a spend and its pair are one batch of statements that commits
-- whether or not the grant was still unspent, with nothing stored for a loser of the race
-- (docs/ARCHITECTURE.md, "Storage").
ALTER TABLE access_codes ADD COLUMN spent_by TEXT;
ALTER TABLE refresh_tokens ADD COLUMN spent_by TEXT;
ALTER TABLE device_grants ADD COLUMN spent_by TEXT;
