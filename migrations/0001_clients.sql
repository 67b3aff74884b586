-- Clients of the identification server (lab task 7), known by IP address alone.
-- ip: the canonical text form; an IPv4 client of a dual-stack listener is stored as IPv4.
-- Times are Unix seconds, UTC.
CREATE TABLE clients (
    ip         TEXT    PRIMARY KEY NOT NULL,
    name       TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    visits     INTEGER NOT NULL DEFAULT 1 CHECK (visits >= 1)
) STRICT;
