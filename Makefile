# One target per lab task, each scripted: no typing, no terminal needed.
# `make test` runs the whole test suite (what CI runs).

BIN := target/debug/netlab
WITH_SERVER := NETLAB_BIN=$(BIN) scripts/with-server.sh

.PHONY: build test task3 task9 task10 tasks

build:
	cargo build --quiet

test:
	cargo test

tasks: task3 task9 task10

## Task 3: the server keeps listening after a client leaves, and serves several at once.
task3: build
	@$(WITH_SERVER) echo -- sh -c '\
	  echo "--- client 1 (talks, then leaves) ---"; \
	  printf "hello\nfrom client 1\n" | $(BIN) connect; \
	  echo "--- client 2 (after client 1 left) ---"; \
	  printf "still listening?\n" | $(BIN) connect; \
	  echo "--- clients 3 and 4 at the same time ---"; \
	  (sleep 1; printf "three\n") | $(BIN) connect & \
	  (sleep 1; printf "four\n") | $(BIN) connect; wait'

## Task 9: fixed-length length header; bytes, not characters; any chunking.
task9: build
	cargo test --quiet --lib frame
	cargo test --quiet --doc frame
	@$(WITH_SERVER) echo -- sh -c 'python3 examples/frame_bytes.py --port $$NETLAB_PORT'
	@echo "--- the Python example client ---"
	@$(WITH_SERVER) echo -- sh -c 'printf "Кириллица\n👋 emoji\n" | python3 examples/client.py --port $$NETLAB_PORT'

## Task 10: many messages back and forth in one conversation.
task10: build
	@$(WITH_SERVER) echo -- sh -c 'seq 1 10 | sed "s/^/message /" | $(BIN) connect'
