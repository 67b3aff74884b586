#!/usr/bin/env bash
# Usage: scripts/type-at-prompts.sh ANSWER... | script -qec "netlab connect" /dev/null
#
# Types each ANSWER followed by Enter, pausing so that each lands at its own prompt, as a
# person would. For demonstrations of the terminal prompts (make task4).
set -euo pipefail
sleep 0.5
for answer in "$@"; do
  printf '%s\r' "$answer"
  sleep 0.4
done
sleep 0.5
