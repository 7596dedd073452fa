# The few commands everyone uses; the README names them.
BIN := .venv/bin

.PHONY: venv run test test-strict lint bench probe

venv:
	scripts/setup.sh run

# Web, worker and scheduler; Redis when REDIS_URL is set, an embedded broker otherwise.
run:
	scripts/run.sh

test:
	scripts/test.sh

# CI: a test skipped for a missing tool fails the run.
test-strict:
	XMAILADMIN_STRICT=1 scripts/test.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check transports

probe: venv
	$(BIN)/python -m transports probe

bench: venv
	$(BIN)/python bench/probe_bench.py
	$(BIN)/python bench/send_bench.py
	$(BIN)/python bench/outbox_bench.py
