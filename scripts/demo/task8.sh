#!/usr/bin/env bash
# Task 8: an authentication server with passwords, secure storage and session tokens.
# Provided by scripts/with-server.sh: NETLAB_BIN, NETLAB_PORT, XDG_DATA_HOME (where the
# database is). Tokens are kept in a scratch state directory.
set -euo pipefail
netlab=${NETLAB_BIN:?}
export XDG_STATE_HOME
XDG_STATE_HOME=$(mktemp -d)
trap 'rm -rf "$XDG_STATE_HOME"' EXIT

echo "--- 1. registration (passwords are read from stdin, never shown) ---"
printf 'alice\ncorrect-horse-battery\ncorrect-horse-battery\nhello\n' | "$netlab" connect
echo "--- the client kept a session token, in a file only its owner can read ---"
ls -l "$XDG_STATE_HOME/netlab/tokens" | cut -d' ' -f1
echo "--- 2. the next connection signs in with the token: no password asked ---"
printf '/whoami\n' | "$netlab" connect
echo "--- 3. after /logout the token is gone on both sides; a password login again ---"
printf '/logout\n' | "$netlab" connect
printf 'alice\ncorrect-horse-battery\n/whoami\n' | "$netlab" connect
echo "--- what the server stores: a scrypt hash, and SHA-256 of each token ---"
python3 - "$XDG_DATA_HOME/netlab/netlab.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for name, phc in db.execute("SELECT name, password_hash FROM users"):
    print(f"{name}: {phc[:40]}...")
for (h,) in db.execute("SELECT hex(token_hash) FROM sessions"):
    print(f"session: sha256 {h[:16].lower()}...")
PY
"$netlab" sessions list
