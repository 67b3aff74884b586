# Shared by the demonstrations (scripts/demo/taskN.sh) and scripts/with-server.sh;
# sourced, not run.
#
# A demonstration prints a heading, runs its steps against a fresh server in a scratch
# directory, checks what it claims (a claim that does not hold fails the demonstration),
# and ends with one line saying what was shown, counted from the server's own log. With
# NETLAB_DEMO_SUMMARY set (make tasks), that line is also appended to that file.

netlab=${NETLAB_BIN:-target/debug/netlab}
demo_task=""
demo_work=""
demo_pid=""

# heading N "what the task shows"
heading() {
  demo_task=$1
  printf '\n=== Task %s: %s\n' "$1" "$2"
}

# step "what comes next"
step() { printf -- '--- %s\n' "$*"; }

# expected "why": the next output is a failure on purpose.
expected() { printf -- '    (expected: %s)\n' "$*"; }

# fail "what did not hold"
fail() {
  printf 'DEMONSTRATION FAILED: %s\n' "$*" >&2
  exit 1
}

# start_server MODE [SERVE FLAGS...]: `netlab serve` on a port the system chooses, its data
# (log, database) in a scratch directory. Exports NETLAB_PORT (so that `netlab connect`
# finds it), XDG_DATA_HOME and SERVER_LOG.
start_server() {
  demo_work=$(mktemp -d)
  export XDG_DATA_HOME="$demo_work/data"
  export SERVER_LOG="$XDG_DATA_HOME/netlab/netlab.log"
  "$netlab" serve "$@" --port 0 >"$demo_work/stdout" 2>"$demo_work/stderr" &
  demo_pid=$!
  trap 'stop_server_quietly' EXIT
  local _
  for _ in $(seq 200); do
    grep -qs '^listening on ' "$demo_work/stdout" && break
    kill -0 "$demo_pid" 2>/dev/null || { cat "$demo_work/stderr" >&2; fail "the server did not start"; }
    sleep 0.05
  done
  local line
  line=$(head -n 1 "$demo_work/stdout")
  [[ $line == "listening on "* ]] || fail "the server did not start: $line"
  export NETLAB_PORT=${line##*:}
  echo "server: netlab serve $* ($line)"
}

stop_server_quietly() {
  [[ -n $demo_pid ]] && kill -TERM "$demo_pid" 2>/dev/null && wait "$demo_pid" 2>/dev/null
  [[ -n $demo_work ]] && rm -rf "$demo_work"
  return 0
}

# stop_server: SIGTERM, as a service manager would; the server must stop cleanly.
stop_server() {
  kill -0 "$demo_pid" 2>/dev/null || fail "the server is no longer running"
  kill -TERM "$demo_pid"
  local status=0
  wait "$demo_pid" || status=$?
  demo_pid=""
  ((status == 0)) || { cat "$demo_work/stderr" >&2; fail "the server stopped with status $status"; }
}

# show_log [GREP PATTERN]: the server's log (the lines matching PATTERN), without dates.
show_log() {
  step "the server's log ($SERVER_LOG)"
  grep -E "${1:-.}" "$SERVER_LOG" | cut -d' ' -f2- | sed 's/^/  /'
}

# Counts from the server's log, each connection's closing line being
# "...: closed after 12ms; 3 messages in, 4 out".
served() { grep -c ': closed after' "$SERVER_LOG" || true; }
messages_in() { sed -n 's/.*: closed after [^;]*; \([0-9]*\) [a-z]* in, .*/\1/p' "$SERVER_LOG" | awk '{s+=$1} END {print s+0}'; }
messages_out() { sed -n 's/.*: closed after [^;]*; [0-9]* [a-z]* in, \([0-9]*\) out.*/\1/p' "$SERVER_LOG" | awk '{s+=$1} END {print s+0}'; }
# The most connections the server had open at once, from its connected/closed lines.
most_at_once() {
  awk '/: connected$/ {n++; if (n > m) m = n} /: closed after/ {n--} END {print m+0}' "$SERVER_LOG"
}

# shown "what was shown": the closing line.
shown() {
  printf '=== Task %s shown: %s\n' "$demo_task" "$*"
  if [[ -n ${NETLAB_DEMO_SUMMARY:-} ]]; then
    printf 'task %-3s %s\n' "$demo_task" "$*" >>"$NETLAB_DEMO_SUMMARY"
  fi
}
