#!/usr/bin/env bash
# Task 6: a busy port makes the server move on to the next free one and say which.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

heading 6 "a busy port makes the server move on to the next one, and print it"
start_server echo
busy=$NETLAB_PORT

step "a second server asks for port $busy, which the first one holds"
"$netlab" serve echo --port "$busy" >"$demo_work/second.out" 2>"$demo_work/second.err" &
second=$!
for _ in $(seq 100); do
  grep -qs '^listening on ' "$demo_work/second.out" && break
  sleep 0.05
done
sed 's/^/  stdout: /' "$demo_work/second.out"
sed 's/^/  stderr: /' "$demo_work/second.err"
moved=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$demo_work/second.out")
[[ -n $moved && $moved != "$busy" ]] || fail "the second server did not move off port $busy"
grep -q "port $busy is in use; listening on $moved instead" "$demo_work/second.err" \
  || fail "the second server did not say that it moved"

step "a client reaches the second server on port $moved"
echo "hello, port $moved" | "$netlab" connect --port "$moved"
kill -TERM "$second"
wait "$second" || fail "the second server did not stop cleanly"

step "an address that is not on this machine fails at once: moving on cannot help"
expected "status 1, with the reason"
status=0
out=$("$netlab" serve echo --host 192.0.2.1 2>&1) || status=$?
grep -v 'service log' <<<"$out"
((status == 1)) || fail "listening on an address not on this machine gave status $status, not 1"
stop_server
show_log 'in use|listening on'
shown "port $busy was busy; the second server listened on $moved instead, said so on" \
  "stderr and in the log, and served a client there"
