#!/usr/bin/env bash
# Install what xmailadmin needs on Debian 12 and build the virtualenv.
#
#   scripts/setup.sh run     the panel: Python venv and the tools detection reads
#   scripts/setup.sh test    also every mail command, postfix, Chromium, Redis
#
# Debian packages are installed only when missing, non-interactively (postfix
# is preseeded to "No configuration", so no dialog). The venv is rebuilt only
# when requirements.txt changed.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-run}

RUN_PACKAGES=(python3 python3-venv binutils procps ca-certificates)
TEST_PACKAGES=(
    postfix dovecot-core msmtp s-nail mutt mailutils bsd-mailx curl openssl
    libnet-ssleay-perl libio-socket-ssl-perl libauthen-sasl-perl
    chromium redis-server redis-tools gettext make
    libgnutls-dane0 libidn12  # exim's libraries: tests run a private exim beside postfix
    systemd  # systemd-analyze verify for deploy/systemd/ (works without systemd as PID 1)
)
packages=("${RUN_PACKAGES[@]}")
[ "$profile" = test ] && packages+=("${TEST_PACKAGES[@]}")

missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "== installing Debian packages: ${missing[*]}"
    echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

VENV=${VENV:-.venv}
stamp="$VENV/.requirements.sha256"
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "== building the virtualenv in $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q -r requirements.txt
    echo "$want" > "$stamp"
fi
