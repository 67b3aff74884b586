#!/usr/bin/env bash
# Task 4: prompts with defaults and safe input, in a real terminal (util-linux `script`
# gives the client a pseudo-terminal). Provided by scripts/with-server.sh: NETLAB_BIN,
# NETLAB_PORT.
set -euo pipefail
netlab=${NETLAB_BIN:?}
port=${NETLAB_PORT:?}

# Terminal output without carriage returns and cursor movements, for reading in a log.
plain() { sed 's/\r\x1b\[2K/\n/g; s/\x1b\[[0-9;]*[A-Za-z]//g' | tr -d '\r'; }

echo "--- a terminal, nothing given: an empty answer takes the default host;"
echo "    'abc' and '70000' are refused and asked again ---"
scripts/type-at-prompts.sh "" abc 70000 "$port" "hello" /quit \
  | env -u NETLAB_PORT script -qec "$netlab connect" /dev/null | plain

echo "--- NETLAB_PORT and --host given: nothing asked ---"
scripts/type-at-prompts.sh "hi" /quit \
  | script -qec "$netlab connect --host 127.0.0.1" /dev/null | plain

echo "--- no terminal: the defaults (127.0.0.1:9090), no question, no hang ---"
echo hi | env -u NETLAB_PORT "$netlab" connect || echo "(exit status $?)"
