#!/usr/bin/env bash
# Task 3: the server keeps listening after a client leaves, and serves several at once.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

heading 3 "the server keeps listening after a client leaves, and serves several at once"
start_server echo

step "client 1 sends two messages, then leaves"
printf 'hello\nfrom client 1\n' | "$netlab" connect
step "client 2 connects after client 1 has left: the server is still listening"
printf 'still listening?\n' | "$netlab" connect
step "clients 3, 4 and 5 at the same time, each staying connected for a second"
clients=()
for n in 3 4 5; do
  (printf 'client %s here\n' "$n"; sleep 1) | "$netlab" connect --bind "127.0.0.$n" \
    | sed "s/^/[client $n] /" &
  clients+=($!)
done
wait "${clients[@]}"
step "client 6, after all of them"
printf 'one more\n' | "$netlab" connect
stop_server
show_log 'connected|closed'

clients=$(served); at_once=$(most_at_once)
((clients == 6)) || fail "the log shows $clients clients served, not 6"
((at_once >= 3)) || fail "the log shows at most $at_once clients at once, not 3"
shown "$clients clients served one after another and $at_once at once;" \
  "$(messages_in) messages in, $(messages_out) out (a greeting each, and the echoes);" \
  "the server stopped only when told to"
