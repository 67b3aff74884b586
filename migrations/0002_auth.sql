-- Users and sessions of the authentication server (lab task 8).
-- Times are Unix seconds, UTC.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    -- ASCII letters, digits, '.', '_', '-'; unique whatever the case.
    name          TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    -- PHC string: $scrypt$ln=..,r=..,p=..$salt$hash, with a random salt per user.
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    -- Failed password logins since the last success, and the time before which no
    -- password is checked for this account.
    failures      INTEGER NOT NULL DEFAULT 0,
    locked_until  INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE sessions (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- SHA-256 of the token. The token itself is never stored: a copy of the database
    -- opens no session.
    token_hash  BLOB    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    last_used   INTEGER NOT NULL,
    -- The session ends after idle_limit seconds without use, and at expires_at at the
    -- latest.
    idle_limit  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX sessions_by_user ON sessions (user_id);
