#!/usr/bin/env bash
# Task 7: an identification server that knows clients by IP and greets them by name.
# Two client addresses on one machine: 127.0.0.2 and 127.0.0.3.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

heading 7 "an identification server knows clients by IP and greets them by name"
start_server ident

step "127.0.0.2, first visit: asked for a name (the empty first answer is refused)"
printf '\nAlice\nhello\n' | "$netlab" connect --bind 127.0.0.2
step "127.0.0.3, first visit"
printf 'Bob\n' | "$netlab" connect --bind 127.0.0.3
step "127.0.0.2 again: greeted by name, without a question"
out=$(printf 'hi again\n' | "$netlab" connect --bind 127.0.0.2)
printf '%s\n' "$out"
grep -q 'Hello, Alice!' <<<"$out" || fail "127.0.0.2 was not greeted as Alice"
step "127.0.0.3 again"
out=$(printf '' | "$netlab" connect --bind 127.0.0.3)
printf '%s\n' "$out"
grep -q 'Hello, Bob!' <<<"$out" || fail "127.0.0.3 was not greeted as Bob"
stop_server

step "what the server keeps (netlab clients list, from its SQLite database)"
"$netlab" clients list
show_log 'named|known as'
shown "2 addresses named on their first visit and greeted by name on the next;" \
  "$(served) visits served, the names kept in the database across connections"
