#!/usr/bin/env bash
# Usage: scripts/with-server.sh MODE [SERVE FLAGS...] -- COMMAND [ARGS...]
#
# Starts `netlab serve MODE --port 0`, exports NETLAB_PORT with the port the system chose
# (so `netlab connect` finds it) and SERVER_LOG with the path of its log file, runs
# COMMAND, then stops the server with SIGTERM and shows its log. The server's data
# directory is a scratch one, so demonstrations leave nothing behind. Used by the
# Makefile's task targets; needs no terminal.
set -euo pipefail

bin=${NETLAB_BIN:-target/debug/netlab}
serve_args=()
while [[ $# -gt 0 && $1 != -- ]]; do serve_args+=("$1"); shift; done
[[ $# -gt 1 ]] || { echo "usage: $0 MODE [FLAGS...] -- COMMAND..." >&2; exit 2; }
shift

work=$(mktemp -d)
export XDG_DATA_HOME="$work/data"
export SERVER_LOG="$XDG_DATA_HOME/netlab/netlab.log"
"$bin" serve "${serve_args[@]}" --port 0 >"$work/stdout" 2>"$work/stderr" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

for _ in $(seq 200); do
  grep -q '^listening on ' "$work/stdout" && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/stderr" >&2; exit 1; }
  sleep 0.05
done
line=$(head -n 1 "$work/stdout")
[[ $line == "listening on "* ]] || { echo "server did not start" >&2; cat "$work/stderr" >&2; exit 1; }
echo "server> $line"
export NETLAB_PORT=${line##*:}

status=0
"$@" || status=$?

kill -TERM "$pid"
wait "$pid" || status=$?
cat "$work/stderr" >&2
echo "--- server log ($SERVER_LOG) ---"
cat "$SERVER_LOG" 2>/dev/null || true
exit "$status"
