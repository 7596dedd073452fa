#!/usr/bin/env bash
# Set up and start the xmailadmin panel: the one command for a fresh machine.
#
#   scripts/run.sh            (installs what is missing, builds .venv, then starts)
#
# Migrates the database, compiles translations if needed, collects static
# files, makes sure a first administrator exists, then starts and supervises
# three processes (scripts/supervise.sh): the web server (gunicorn on
# 127.0.0.1:$PORT), a Celery worker and Celery beat. Ctrl-C (or TERM) stops all
# three; one that dies is started again (with a backoff, at most 5 times a
# minute) and the others go on. Without REDIS_URL the broker is embedded
# (folders under var/celery), so no other server is needed.
#
# Environment: PORT (8000), XMAILADMIN_BIND (127.0.0.1), REDIS_URL, DATABASE_URL,
# WEB_WORKERS (2), WEB_THREADS (8), XMAILADMIN_WORKER_CONCURRENCY (16);
# docs/panel.md lists the rest.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${VENV:-.venv}/bin
PORT=${PORT:-8000}
BIND=${XMAILADMIN_BIND:-127.0.0.1}
export DJANGO_SETTINGS_MODULE=xmailadmin.settings
umask 077 # secrets, database and logs in var/ are for this user only

# Debian packages the panel needs (when missing) and the virtualenv.
scripts/setup.sh run

manage() { "$BIN/python" manage.py "$@"; }

echo "== xmailadmin: preparing"
manage migrate --noinput -v0
# The compiled .mo files are committed; recompile only when gettext is there and a
# .po changed since (or a .mo is missing).
have_msgfmt=0
command -v msgfmt >/dev/null && have_msgfmt=1
for po in xmailadmin/locale/*/LC_MESSAGES/django.po; do
    mo=${po%.po}.mo
    if [ ! -f "$mo" ] || { [ "$have_msgfmt" = 1 ] && [ "$po" -nt "$mo" ]; }; then
        if [ "$have_msgfmt" = 1 ]; then
            manage compilemessages -v0 --ignore ".venv" --ignore "var"
        else
            echo "warning: $mo is missing and msgfmt too (apt-get install gettext)" >&2
        fi
        break
    fi
done
manage collectstatic --noinput -v0
manage check
login=$(manage createadmin)

if [ -n "${REDIS_URL:-}" ]; then
    broker="Redis at ${REDIS_URL%%\?*}"
else
    broker="embedded (folders in var/celery; set REDIS_URL to use Redis)"
fi

cat <<TXT
== xmailadmin is starting
   URL:     http://$BIND:$PORT/
   Broker:  $broker
$(printf '%s\n' "$login" | sed 's/^/   /')
   Stop with Ctrl-C.
TXT

# supervise.sh keeps the three running: a worker killed by a broker problem (or
# anything else) is restarted, and the web server stays up meanwhile.
exec scripts/supervise.sh \
    web "$BIN/gunicorn" xmailadmin.wsgi \
        --bind "$BIND:$PORT" \
        --workers "${WEB_WORKERS:-2}" --threads "${WEB_THREADS:-8}" --worker-class gthread \
        --timeout 60 --graceful-timeout 10 --access-logfile - \
        --logger-class xmailadmin.logtime.GunicornLogger \
    -- worker "$BIN/celery" -A xmailadmin worker --loglevel INFO --without-mingle --without-gossip \
    -- beat "$BIN/celery" -A xmailadmin beat --loglevel INFO
