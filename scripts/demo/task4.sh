#!/usr/bin/env bash
# Task 4: prompts with defaults and safe input, in a real terminal (util-linux `script`
# gives the client a pseudo-terminal; scripts/type-at-prompts.sh does the typing).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
command -v script >/dev/null || fail "this demonstration needs util-linux's script"

# Terminal output without carriage returns and cursor movements, for reading in a log.
plain() { sed 's/\r\x1b\[2K/\n/g; s/\x1b\[[0-9;]*[A-Za-z]//g' | tr -d '\r'; }

heading 4 "host and port prompts with defaults and safe input"
start_server echo
port=$NETLAB_PORT

step "on a terminal, nothing given: Enter takes the default host; 'abc' and '70000' are
    refused with a reason and asked again"
out=$(scripts/type-at-prompts.sh "" abc 70000 "$port" "hello" /quit \
  | env -u NETLAB_PORT script -qec "$netlab connect" /dev/null | plain)
printf '%s\n' "$out"
grep -q '"abc" is not a port' <<<"$out" || fail "'abc' was not refused"
grep -q '70000 is out of range' <<<"$out" || fail "'70000' was not refused"

step "on a terminal, host and port given (--host, NETLAB_PORT): nothing asked"
out=$(scripts/type-at-prompts.sh "hi" /quit \
  | script -qec "$netlab connect --host 127.0.0.1" /dev/null | plain)
printf '%s\n' "$out"
! grep -q 'Port \[' <<<"$out" || fail "a port was asked for although given"

step "no terminal (a pipe): no question at all, the default host taken"
echo "piped" | "$netlab" connect --port "$port"

step "Ctrl-D at a question: the client leaves, and says why"
expected "status 1: the user gave no answer"
status=0
out=$(printf '\004' | env -u NETLAB_PORT script -qec "$netlab connect --host 127.0.0.1" /dev/null \
  | plain) || status=$?
printf '%s\n' "$out"
grep -q 'input ended (Ctrl-D)' <<<"$out" || fail "Ctrl-D was not taken as the end of input"
((status == 1)) || fail "Ctrl-D at a question ended with status $status, not 1"

stop_server
clients=$(served)
((clients == 3)) || fail "the log shows $clients clients served, not 3"
shown "2 bad ports refused and asked again, defaults taken on Enter, nothing asked" \
  "when given or without a terminal, Ctrl-D leaves; $clients clients served"
