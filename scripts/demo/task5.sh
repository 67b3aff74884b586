#!/usr/bin/env bash
# Task 5: service messages go to a log file readable by its owner only; the console
# stays quiet. Provided by scripts/with-server.sh: NETLAB_BIN, NETLAB_PORT, SERVER_LOG.
set -euo pipefail
netlab=${NETLAB_BIN:?}

echo "--- a polite client ---"
printf 'hello\n' | "$netlab" connect
echo "--- a client that announces a 4 GiB message ---"
python3 - <<'PY'
import os, socket
with socket.create_connection(("127.0.0.1", int(os.environ["NETLAB_PORT"]))) as s:
    s.sendall(b"\xff\xff\xff\xff")
    print(s.recv(4096))
PY
sleep 0.5
echo "--- the log file: owner-only ---"
ls -l "${SERVER_LOG:?}" | cut -d' ' -f1,9-
