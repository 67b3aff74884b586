#!/usr/bin/env bash
# Usage: scripts/with-server.sh MODE [SERVE FLAGS...] -- COMMAND [ARGS...]
#
# Starts `netlab serve MODE --port 0` with its data (log, database) in a scratch
# directory, exports NETLAB_PORT with the port the system chose (so that `netlab connect`
# finds it), SERVER_LOG and XDG_DATA_HOME, runs COMMAND, then stops the server with
# SIGTERM and shows its log. Exits with COMMAND's status. Needs no terminal.
set -euo pipefail
source "$(dirname "$0")/demo/lib.sh"

serve_args=()
while [[ $# -gt 0 && $1 != -- ]]; do serve_args+=("$1"); shift; done
[[ $# -gt 1 ]] || { echo "usage: $0 MODE [FLAGS...] -- COMMAND..." >&2; exit 2; }
shift

start_server "${serve_args[@]}"
status=0
"$@" || status=$?
stop_server
show_log
exit "$status"
