#!/usr/bin/env bash
# Task 10: many messages back and forth in one conversation, each echo checked.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

heading 10 "many messages back and forth"
start_server echo
count=1000
step "one client sends $count messages, Latin and Cyrillic, in one conversation"
sent="$demo_work/sent"
for i in $(seq 1 "$count"); do echo "message $i: сообщение $i"; done >"$sent"
received="$demo_work/received"
"$netlab" connect <"$sent" >"$received"
step "what came back after the greeting (the first and last three)"
sed -n '2,4p' "$received" | sed 's/^/  /'
echo "  ..."
tail -n 3 "$received" | sed 's/^/  /'
tail -n +2 "$received" | cmp -s - "$sent" || fail "the echoes differ from what was sent"
echoed=$(($(wc -l <"$received") - 1))
step "three clients at once, $count messages each"
clients=()
for n in 2 3 4; do
  "$netlab" connect --bind "127.0.0.$n" <"$sent" >"$demo_work/received.$n" &
  clients+=($!)
done
wait "${clients[@]}"
for n in 2 3 4; do
  tail -n +2 "$demo_work/received.$n" | cmp -s - "$sent" || fail "client 127.0.0.$n got wrong echoes"
done
stop_server
show_log 'closed after'
shown "$(messages_in) messages in, $(messages_out) out over $(served) conversations; every" \
  "echo came back unchanged and in order ($echoed of $count for the first client)"
