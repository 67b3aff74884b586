#!/usr/bin/env bash
# Task 7: an identification server that knows clients by IP and greets them by name.
# Two client addresses on one machine: 127.0.0.2 and 127.0.0.3. Provided by
# scripts/with-server.sh: NETLAB_BIN, NETLAB_PORT, XDG_DATA_HOME (where the database is).
set -euo pipefail
netlab=${NETLAB_BIN:?}

echo "--- 127.0.0.2, first visit: asked for a name (the first answer is refused) ---"
printf '\nAlice\nhello\n' | "$netlab" connect --bind 127.0.0.2
echo "--- 127.0.0.3, first visit ---"
printf 'Bob\n' | "$netlab" connect --bind 127.0.0.3
echo "--- 127.0.0.2 again: greeted by name ---"
printf 'hi again\n' | "$netlab" connect --bind 127.0.0.2
echo "--- netlab clients list ---"
"$netlab" clients list
