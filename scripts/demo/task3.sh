#!/usr/bin/env bash
# Task 3: the server keeps listening after a client leaves, and serves several at once.
# Run through scripts/with-server.sh, which provides NETLAB_BIN and NETLAB_PORT.
set -euo pipefail
netlab=${NETLAB_BIN:?}

echo "--- client 1 talks, then leaves ---"
printf 'hello\nfrom client 1\n' | "$netlab" connect
echo "--- client 2, after client 1 left ---"
printf 'still listening?\n' | "$netlab" connect
echo "--- clients 3 and 4 at the same time ---"
(sleep 1; printf 'three\n') | "$netlab" connect &
(sleep 1; printf 'four\n') | "$netlab" connect
wait
