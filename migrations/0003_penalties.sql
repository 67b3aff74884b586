-- Penalties for failed password attempts, after OpenSSH's PerSourcePenalties: a source
-- that guesses is slowed down whatever accounts it tries, and an account guessed at from
-- many sources is slowed down for all of them. A source is an IPv4 address or an IPv6
-- /64. Times are Unix seconds, UTC; penalties are forgotten a day after the last failure.

CREATE TABLE source_penalties (
    source       TEXT    PRIMARY KEY NOT NULL,
    -- Failed attempts in a row (an attempt counts as failed from the moment it is
    -- admitted until its password turns out right), and the time before which no
    -- attempt from this source is checked.
    failures     INTEGER NOT NULL,
    locked_until INTEGER NOT NULL,
    last_failure INTEGER NOT NULL
) STRICT;

CREATE INDEX source_penalties_by_age ON source_penalties (last_failure);

-- An account's failures by source. A source counts for at most a few of the account's
-- failures (users.failures), so one guesser cannot lock the account for everyone.
CREATE TABLE account_failures (
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source       TEXT    NOT NULL,
    failures     INTEGER NOT NULL,
    last_failure INTEGER NOT NULL,
    PRIMARY KEY (user_id, source)
) STRICT;

-- users.failures and users.locked_until are now the account's own penalty, counted as
-- above; last_failure lets it be forgotten after a quiet day.
ALTER TABLE users ADD COLUMN last_failure INTEGER NOT NULL DEFAULT 0;

-- Where an account was registered from (NULL: by an admin), for the per-source limit on
-- registrations.
ALTER TABLE users ADD COLUMN registered_from TEXT;

CREATE INDEX users_by_origin ON users (registered_from, created_at);
