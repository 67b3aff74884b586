#!/usr/bin/env bash
# Task 5: service messages go to a log file readable by its owner only; the console
# stays quiet.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

heading 5 "service messages go to a log file, not the console"
start_server echo

step "a polite client"
printf 'hello\n' | "$netlab" connect
step "a client that announces a 4 GiB message: the server refuses it, says why, and logs it"
python3 - <<'PY'
import os, socket, struct
with socket.create_connection(("127.0.0.1", int(os.environ["NETLAB_PORT"]))) as s:
    s.sendall(struct.pack(">I", 0xFFFFFFFF))
    data = b""
    while chunk := s.recv(4096):
        data += chunk
while data:
    (n,) = struct.unpack(">I", data[:4])
    print("server says:", data[4 : 4 + n].decode())
    data = data[4 + n :]
PY
step "a client that connects and leaves without a word"
python3 -c 'import os, socket; socket.create_connection(("127.0.0.1", int(os.environ["NETLAB_PORT"]))).close()'
stop_server

step "what the server printed on its console: its address, and where its log is"
cat "$demo_work/stdout" "$demo_work/stderr" | sed 's/^/  /'
mode=$(stat -c %A "$SERVER_LOG")
step "the log file: $mode (its owner only)"
[[ $mode == "-rw-------" ]] || fail "the log file is $mode, not -rw-------"
step "the log, as written ($SERVER_LOG)"
sed 's/^/  /' "$SERVER_LOG"
lines=$(wc -l <"$SERVER_LOG")
grep -q 'WARN .*over the maximum' "$SERVER_LOG" || fail "the refused message is not in the log"
shown "$lines service messages in the log file (start, $(served) connections with their" \
  "counts, the refused message, stop); the console said only where the log is"
