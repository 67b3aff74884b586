#!/usr/bin/env bash
# Task 8: an authentication server with passwords, secure storage and session tokens.
# The client's tokens are kept in a scratch state directory. (A lower scrypt cost than
# the default keeps the demonstration quick.)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

heading 8 "an authentication server: passwords, secure storage, session tokens"
start_server auth --scrypt-log-n 14
export XDG_STATE_HOME="$demo_work/state"

step "1. registration (the password is read from stdin and never shown)"
printf 'alice\ncorrect-horse-battery\ncorrect-horse-battery\nhello\n' | "$netlab" connect
tokens="$XDG_STATE_HOME/netlab/tokens"
[[ $(stat -c %A "$tokens") == "-rw-------" ]] || fail "the token file is not private"
step "the client kept a session token, in a file only its owner can read: $(stat -c %A "$tokens")"
step "2. the next connection signs in with the token: no password asked"
out=$(printf '/whoami\n' | "$netlab" connect)
printf '%s\n' "$out"
grep -q 'signed in with a session token' <<<"$out" || fail "the token did not sign alice in"
step "3. /logout ends the session on both sides; the next sign-in needs the password"
printf '/logout\n' | "$netlab" connect
out=$(printf 'alice\ncorrect-horse-battery\n/whoami\n' | "$netlab" connect)
printf '%s\n' "$out"
grep -q 'signed in with your password' <<<"$out" || fail "the password did not sign alice in"
step "4. from a client without alice's token, a wrong password is refused"
out=$(printf 'alice\nwrong-password\n/quit\n' \
  | XDG_STATE_HOME="$demo_work/elsewhere" "$netlab" connect 2>&1 || true)
printf '%s\n' "$out"
grep -q 'Wrong password' <<<"$out" || fail "a wrong password was not refused"
stop_server

step "what the server stores: a salted scrypt hash per user, the SHA-256 of each token"
python3 - "$XDG_DATA_HOME/netlab/netlab.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for name, phc in db.execute("SELECT name, password_hash FROM users"):
    print(f"  {name}: {phc[:40]}...")
for (h,) in db.execute("SELECT hex(token_hash) FROM sessions"):
    print(f"  session: sha256 {h[:16].lower()}...")
PY
"$netlab" sessions list
show_log 'registered|signed|wrong|failed'
if grep -q 'correct-horse-battery' "$SERVER_LOG" "$XDG_DATA_HOME"/netlab/netlab.db*; then
  fail "the password is in the log or the database"
fi
shown "a registration, a token sign-in, a logout that ended the token, a password" \
  "sign-in and a refused password; $(served) connections; no password in the log or database"
