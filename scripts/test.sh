#!/usr/bin/env bash
# Set up everything the tests use and run them all (extra arguments go to pytest).
#
#   scripts/test.sh                 all tests, two processes
#   XMAILADMIN_STRICT=1 scripts/test.sh   CI: a test skipped for a missing tool fails
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test

# The worker tests need Redis; start one on loopback if none answers.
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "== starting redis-server on 127.0.0.1:6379"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir /tmp --logfile /tmp/xmailadmin-redis.log
    for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null

# exim conflicts with postfix as a package: the tests use a private unpacked copy.
scripts/private-exim.sh .cache/private-exim >/dev/null

.venv/bin/ruff check .
status=0
.venv/bin/pytest -n 2 "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "no tests were collected: that is a failure" >&2
    exit 1
fi
exit "$status"
