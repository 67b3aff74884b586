#!/usr/bin/env bash
# Task 6: a busy port makes the server move on to the next one and name it. Provided
# by scripts/with-server.sh: NETLAB_BIN, NETLAB_PORT (the port the first server holds).
set -euo pipefail
netlab=${NETLAB_BIN:?}

echo "--- a second server asks for port $NETLAB_PORT, which the first one holds ---"
"$netlab" serve echo --port "$NETLAB_PORT" &
pid=$!
sleep 1
kill -TERM "$pid"
wait "$pid"

echo "--- an address that is not on this machine fails at once, no retrying ---"
"$netlab" serve echo --host 192.0.2.1 || echo "(exit status $?)"
