#!/usr/bin/env bash
# A private copy of Debian's exim4, for testing the exim relay on a machine with postfix.
#
#   scripts/private-exim.sh [DIR]      default DIR: .cache/private-exim
#
# Not under var/, which is 0700: exim's daemon re-executes itself on SIGHUP as its own
# user (Debian-exim), which must be able to reach the binary.
#
# exim4 and postfix conflict as Debian packages, so exim is not installed: its three
# packages are downloaded (apt-get download) and unpacked (dpkg -x) into DIR/root, once;
# later runs reuse them. The script also creates the system user exim is compiled for
# (Debian-exim) and installs missing runtime libraries of exim (libgnutls-dane0 ...), both
# only when missing and only as root. It prints the path of the exim4 binary.
#
# Running it: see docs/relays.md (exim -C FILE, a private spool and log, update-exim4.conf -d/-o).
set -euo pipefail

dir=${1:-"$(dirname "$0")/../.cache/private-exim"}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
packages=(exim4-daemon-light exim4-base exim4-config)
root="$dir/root"
exim="$root/usr/sbin/exim4"

# Two test processes may ask at once: one unpacks, the other waits for it.
exec 9>"$dir/.lock"
flock -w 300 9

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"

if [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir/cache" "$root" "$root.partial"
    mkdir -p "$dir/cache" "$root.partial"
    # apt-get download as root warns that _apt cannot write here; the download works.
    if ! (cd "$dir/cache" && apt-get download -qq "${packages[@]}" 2>/dev/null); then
        # Stale package lists name versions the mirror no longer has.
        $sudo apt-get update -qq
        (cd "$dir/cache" && apt-get download -qq "${packages[@]}" 2>/dev/null)
    fi
    for deb in "$dir"/cache/*.deb; do
        dpkg -x "$deb" "$root.partial"
    done
    mv "$root.partial" "$root"
    touch "$dir/.complete"
fi

# The user name is compiled in: without it exim refuses to start at all.
if ! getent passwd Debian-exim >/dev/null; then
    $sudo useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin Debian-exim
fi

# Runtime libraries from the package's Depends that this machine lacks.
missing=()
for dep in $(dpkg-deb -f "$dir"/cache/exim4-daemon-light_*.deb Depends | tr ',' '\n' \
        | sed -e 's/(.*)//' -e 's/|.*//' -e 's/ //g' | grep '^lib'); do
    dpkg-query -W -f '${Status}' "$dep" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$dep")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing exim's runtime libraries: ${missing[*]}" >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

if ldd "$exim" | grep -q "not found"; then
    echo "exim4 lacks libraries:" >&2
    ldd "$exim" | grep "not found" >&2
    exit 1
fi
"$exim" -C /dev/null -bV >/dev/null 2>&1 || { "$exim" -C /dev/null -bV >&2; exit 1; }
echo "$exim"
