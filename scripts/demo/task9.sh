#!/usr/bin/env bash
# Task 9: a fixed-length header that counts bytes; frames survive any chunking.
# Provided by scripts/with-server.sh: NETLAB_PORT.
set -euo pipefail
echo "--- one frame on the wire, sent in 3-byte pieces ---"
python3 examples/frame_bytes.py --port "${NETLAB_PORT:?}"
echo "--- the Python example client (standard library only) ---"
printf 'Кириллица\n👋 emoji\n' | python3 examples/client.py --port "$NETLAB_PORT"
