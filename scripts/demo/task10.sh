#!/usr/bin/env bash
# Task 10: many messages back and forth in one conversation. Provided by
# scripts/with-server.sh: NETLAB_BIN, NETLAB_PORT.
set -euo pipefail
for i in $(seq 1 10); do echo "message $i: сообщение $i"; done | "${NETLAB_BIN:?}" connect
