-- Project invitations (Speckle's stream invites). An invitation names a registered user, or an
-- email that has no account yet (it is attached to the account when the email registers). The
-- role is chosen at invitation and given on acceptance; an invitation is used once.
CREATE TABLE project_invites (
    id TEXT PRIMARY KEY,
    stream_id TEXT NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    email TEXT,                          -- normalised; set when invited by email
    role TEXT NOT NULL,                  -- the project role given on acceptance
    token TEXT NOT NULL,                 -- what the invitee presents to accept or decline
    inviter_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);
CREATE INDEX project_invites_stream_idx ON project_invites (stream_id);
CREATE INDEX project_invites_user_idx ON project_invites (user_id);
CREATE INDEX project_invites_email_idx ON project_invites (email);
