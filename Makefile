# One target per lab task, each scripted: no typing, no terminal needed. Each
# demonstration (scripts/demo/) runs against a fresh server, checks what it claims, and
# ends with a line saying what it showed, counted from the server's log.
# `make test` runs the whole test suite (what CI runs).

BIN := $(CURDIR)/target/debug/netlab
DEMO := NETLAB_BIN=$(BIN)

.PHONY: build test bench bench-before bench-plugins attack grade tasks task3 task4 task5 task6 task7 task8 task9 task10

build:
	@cargo build --quiet

test:
	cargo test

## netlab's echo server against a bare tokio + LengthDelimitedCodec baseline, its line
## codec against its framed one, and TLS against plain (~8 min); then instructions per message, which
## unlike timings repeat exactly from run to run (needs valgrind).
bench:
	cargo build --release --quiet --bin netlab --example baseline_echo
	python3 scripts/bench.py --codecs --tls
	python3 scripts/instructions.py

## Framed echo of this tree against an earlier revision, built in a scratch worktree:
## make bench-before REV=v0.1.0 (~3 min after the builds).
BEFORE_DIR := $(CURDIR)/target/bench-before
bench-before:
	@test -n "$(REV)" || { echo "usage: make bench-before REV=<git revision>" >&2; exit 2; }
	cargo build --release --quiet --bin netlab --example baseline_echo
	rm -rf $(BEFORE_DIR)/src && git worktree prune
	git worktree add --detach --force $(BEFORE_DIR)/src $(REV)
	cd $(BEFORE_DIR)/src && CARGO_TARGET_DIR=$(BEFORE_DIR)/target cargo build --release --quiet --bin netlab
	python3 scripts/bench.py --no-baseline --before $(BEFORE_DIR)/target/release/netlab
	python3 scripts/instructions.py --before $(BEFORE_DIR)/target/release/netlab
	git worktree remove --force $(BEFORE_DIR)/src

## What `serve exec` adds to a program, per connection and per message (~1 min).
bench-plugins:
	cargo build --release --quiet --bin netlab
	python3 scripts/plugin_bench.py

## Password guessing with 200 connections against one account, from one address and
## from 200: checks performed, and a legitimate user's sign-in time (~3 min).
attack:
	cargo build --release --quiet --bin netlab
	python3 scripts/attack.py

## netlab check on a class in miniature: tests/fixtures holds servers that each make one
## classic mistake, and three that make none (~1 min). Their failures are the point: only a
## checker that cannot reach its servers (exit 2) fails this target.
FIXTURES := cd tests/fixtures && $(BIN) check --exec 'python3 {}' --exec-stdin '{port}'
grade: build
	@$(FIXTURES) --codec raw good_raw.py recv_1024_decode.py one_at_a_time.py \
	  no_reuseaddr.py dies_on_reset.py never_starts.py; test $$? -le 1
	@$(FIXTURES) --codec framed good_framed.py framed_single_recv.py chars_header.py; \
	  test $$? -le 1
	@$(FIXTURES) --codec lines good_lines.py
	@$(FIXTURES) --mode auth auth_any_password.py; test $$? -le 1

## Every demonstration, then one line per task saying what it showed (or that it failed).
tasks: build
	@summary=$$(mktemp); status=0; \
	for n in 3 4 5 6 7 8 9 10; do \
	  NETLAB_DEMO_SUMMARY=$$summary $(DEMO) scripts/demo/task$$n.sh \
	    || { printf 'task %-3s FAILED (see above)\n' $$n >>$$summary; status=1; }; \
	done; \
	printf '\n=== make tasks: what each demonstration showed\n'; cat $$summary; \
	rm -f $$summary; exit $$status

## Task 3: the server keeps listening after a client leaves, and serves several at once.
task3: build
	@$(DEMO) scripts/demo/task3.sh

## Task 4: host and port prompts with defaults and safe input (needs util-linux script).
task4: build
	@$(DEMO) scripts/demo/task4.sh

## Task 5: service messages in a log file.
task5: build
	@$(DEMO) scripts/demo/task5.sh

## Task 6: a busy port makes the server move on to the next one.
task6: build
	@$(DEMO) scripts/demo/task6.sh

## Task 7: an identification server: clients known by IP, greeted by name.
task7: build
	@$(DEMO) scripts/demo/task7.sh

## Task 8: an authentication server: passwords, secure storage, session tokens.
task8: build
	@$(DEMO) scripts/demo/task8.sh

## Task 9: send/receive helpers with a fixed-length length header.
task9: build
	@$(DEMO) scripts/demo/task9.sh

## Task 10: many messages back and forth.
task10: build
	@$(DEMO) scripts/demo/task10.sh
