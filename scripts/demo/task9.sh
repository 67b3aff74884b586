#!/usr/bin/env bash
# Task 9: send/receive helpers with a fixed-length header that counts bytes, as an
# extension of the socket type (`SendMsg`/`RecvMsg` on any Read/Write, src/wire/frame.rs).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

heading 9 "send/receive helpers with a fixed-length length header"

step "the helpers' own tests (src/wire/frame.rs), by name"
log=$(mktemp)
if ! cargo test --lib wire::frame >"$log" 2>&1; then
  cat "$log"
  fail "the framing tests failed"
fi
grep -E '^test .* ok$' "$log" | sort | sed 's/^test wire::frame::tests::/  /; s/ \.\.\. ok$/: ok/'
tests=$(grep -cE '^test .* ok$' "$log")
rm -f "$log"

start_server echo
step "one frame on the wire (a 4-byte big-endian length in bytes, then UTF-8), sent in
    3-byte pieces and echoed whole"
out=$(python3 examples/frame_bytes.py --port "$NETLAB_PORT")
printf '%s\n' "$out"
grep -q "6 characters, 12 bytes" <<<"$out" || fail "the text is not 12 bytes"
grep -q "^received  00 00 00 0c .*-> 'привет'$" <<<"$out" || fail "the frame did not come back whole"
step "the Python example client (standard library only): Cyrillic and emoji round-trip"
out=$(printf 'Кириллица\n👋 emoji\n' | python3 examples/client.py --port "$NETLAB_PORT")
printf '%s\n' "$out"
grep -q '^👋 emoji$' <<<"$out" || fail "the emoji did not come back whole"
stop_server
shown "$tests framing tests passed; 'привет' is 6 characters and 12 bytes, and its header" \
  "says 12; frames cut into 3-byte pieces arrive whole; $(messages_in) messages round-tripped"
