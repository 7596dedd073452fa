#!/usr/bin/env bash
# Install xmailadmin as systemd services that start at boot and restart after a crash.
#
#   sudo scripts/install-service.sh [--user NAME] [--dir DIR] [--env-file FILE] [--worker-only]
#   sudo scripts/install-service.sh --uninstall [--purge]
#   scripts/install-service.sh --render-only OUTDIR [--user NAME] [--dir DIR] [--env-file FILE]
#
# Install (root): copies this checkout to DIR (default /opt/xmailadmin; the checkout
# itself if DIR is it), builds DIR/.venv (scripts/setup.sh run, with the system
# python3 so that the service user can run it), creates the system user NAME
# (default xmailadmin, home /var/lib/xmailadmin), makes DIR/var its own (0700), writes
# FILE (default /etc/xmailadmin/env, 0640 root:NAME) with REDIS_URL, DATABASE_URL,
# PORT, XMAILADMIN_SERVER_NAME and XMAILADMIN_CELERY_QUEUE when they are set in this
# script's environment (values are never printed;
# other lines of the file are kept), runs migrate, collectstatic, check and
# createadmin as NAME (the password goes only to DIR/var/admin_password, 0600, owned
# by NAME), renders deploy/systemd/* into /etc/systemd/system ($SYSTEMD_UNIT_DIR if
# set) and, when systemd runs, `systemctl daemon-reload` and
# `systemctl enable --now xmailadmin.target` (and a restart when something changed).
# Without systemd (a container) it says so and how to start the panel, and exits 0.
# Running it again changes nothing unless the checkout or the settings changed.
#
#   sudo REDIS_URL=redis://127.0.0.1:6379/0 PORT=8000 scripts/install-service.sh
#
# --worker-only: a mail server whose worker serves a panel on another machine (see
# "Several servers" in the README): only the worker's unit and a target holding it are
# installed, and web and beat units left by an earlier install are removed.
#
# --uninstall stops and removes the units and keeps DIR, its data and FILE; --purge
# also deletes DIR/var (database, keys, password files), FILE and the copy in DIR
# (never this checkout). The user stays (`deluser --system xmailadmin` removes it).
# --render-only OUTDIR only writes the rendered units to OUTDIR (no root needed).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd -P)
SYSTEM_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
UNITS=(xmailadmin-web.service xmailadmin-worker.service xmailadmin-beat.service xmailadmin.target)
DEFAULT_UNIT_DIR=/etc/systemd/system

user=xmailadmin
dir=/opt/xmailadmin
env_file=/etc/xmailadmin/env
render_only=""
uninstall=0
purge=0
worker_only=0

say() { echo "== xmailadmin: $*"; }
die() { echo "install-service.sh: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

while [ $# -gt 0 ]; do
    case $1 in
        --user) user=${2:?--user needs a name}; shift 2 ;;
        --dir) dir=${2:?--dir needs a folder}; shift 2 ;;
        --env-file) env_file=${2:?--env-file needs a path}; shift 2 ;;
        --render-only) render_only=${2:?--render-only needs a folder}; shift 2 ;;
        --worker-only) worker_only=1; shift ;;
        --uninstall) uninstall=1; shift ;;
        --purge) uninstall=1; purge=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

# The values go into unit files and sed replacements: plain names and paths only.
[[ $user =~ ^[a-z_][a-z0-9_-]{0,30}$ ]] || die "--user: a system user name (a-z, 0-9, _ -)"
path_ok() { [[ $1 =~ ^/[A-Za-z0-9._/+-]+$ && ! $1 =~ (^|/)\.\.?(/|$) ]]; }
dir=${dir%/}
path_ok "$dir" || die "--dir: an absolute path without spaces or special characters"
path_ok "$env_file" || die "--env-file: an absolute path without spaces or special characters"
unit_dir=${SYSTEMD_UNIT_DIR:-$DEFAULT_UNIT_DIR}
var_dir=$dir/var
home=/var/lib/$user
sbin_dir=${XMAILADMIN_SBIN_DIR:-/usr/local/sbin} # a test's own folder, as SYSTEMD_UNIT_DIR
path_ok "$sbin_dir" || die "XMAILADMIN_SBIN_DIR: an absolute path without special characters"
outbox_dir=/var/spool/xmailadmin/outbox # XMAILADMIN_OUTBOX, once the settings are read

# --- the units -----------------------------------------------------------------

# Scratch files live here, not beside their targets: a run that changes nothing
# leaves even the folders' modification times alone.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

group=$user # adduser --group makes it; an existing user keeps its own
getent passwd "$user" >/dev/null && group=$(id -gn "$user")

render() { # template -> stdout
    local worker=()
    if [ "$worker_only" = 1 ] && [ "$1" = xmailadmin.target ]; then
        worker=(-e "s|^Wants=.*|Wants=xmailadmin-worker.service|"
            -e "s|^Description=.*|Description=xmailadmin worker of this mail server|")
    fi
    sed -e "s|@DIR@|$dir|g" -e "s|@USER@|$user|g" -e "s|@GROUP@|$group|g" \
        -e "s|@ENV_FILE@|$env_file|g" -e "s|@OUTBOX@|$outbox_dir|g" "${worker[@]}" \
        "$SRC/deploy/systemd/$1"
}
# A worker-only machine runs no web server and no scheduler of its own.
WEB_AND_BEAT=(xmailadmin-web.service xmailadmin-beat.service)
if [ "$worker_only" = 1 ] && [ "$uninstall" = 0 ]; then
    UNITS=(xmailadmin-worker.service xmailadmin.target)
fi

# Writes the rendered units to $1; prints the names of those that changed.
write_units() {
    local out=$1 unit
    [ -d "$out" ] || mkdir -p "$out"
    for unit in "${UNITS[@]}"; do
        render "$unit" > "$work/$unit"
        grep -q '@[A-Z_]*@' "$work/$unit" && die "$unit: a placeholder is left after rendering"
        if ! cmp -s "$work/$unit" "$out/$unit" || [ "$(stat -c %a "$out/$unit")" != 644 ]; then
            install -m 0644 "$work/$unit" "$out/$unit"
            echo "$unit"
        fi
    done
}

if [ -n "$render_only" ]; then
    write_units "$render_only" >/dev/null
    say "units rendered into $render_only (for $dir, user $user, settings $env_file)"
    exit 0
fi

[ "$(id -u)" -eq 0 ] || die "run it as root (sudo $0 ...)"

# systemd is in charge when it is PID 1 (sd_booted: /run/systemd/system exists). A
# test's own SYSTEMD_UNIT_DIR is not systemd's, so systemctl is left alone then.
systemd=0
if [ -d /run/systemd/system ] && [ "$unit_dir" = "$DEFAULT_UNIT_DIR" ] \
    && command -v systemctl >/dev/null; then
    systemd=1
fi

# One install at a time (two would race for the user, the venv and the units).
lock=/run/lock
[ -d "$lock" ] || lock=/tmp
exec 9>"$lock/xmailadmin-install-service.lock"
flock 9

in_place=0
[ "$(realpath -m "$dir")" = "$SRC" ] && in_place=1

# --- uninstall -----------------------------------------------------------------

if [ "$uninstall" = 1 ]; then
    if [ "$systemd" = 1 ]; then
        systemctl disable --now xmailadmin.target 2>/dev/null || true
        systemctl stop xmailadmin-web.service xmailadmin-worker.service \
            xmailadmin-beat.service 2>/dev/null || true
    fi
    removed=0
    for unit in "${UNITS[@]}"; do
        if [ -e "$unit_dir/$unit" ]; then
            rm -f "$unit_dir/$unit"
            removed=1
        fi
    done
    if [ "$systemd" = 1 ]; then
        systemctl daemon-reload
        systemctl reset-failed "${UNITS[@]}" 2>/dev/null || true
    fi
    if [ "$removed" = 1 ]; then say "units removed from $unit_dir"; else say "no units in $unit_dir"; fi
    # Plain shell: a Django run as root here could make var/ files as root. Without the
    # link, applications stop queueing mail that nothing would deliver.
    link=$sbin_dir/xmail-sendmail
    if [ "$(readlink "$link" 2>/dev/null)" = "$dir/bin/xmail-sendmail" ]; then
        if update-alternatives --query sendmail 2>/dev/null | grep -qxF "Alternative: $link"; then
            update-alternatives --remove sendmail "$link" && say "removed $link from the sendmail alternatives"
        fi
        rm -f "$link" && say "removed $link"
    fi
    if [ "$purge" = 0 ]; then
        say "kept: $dir, its data in $var_dir and the settings in $env_file (--purge deletes them)"
        exit 0
    fi
    if [ -d "$var_dir" ]; then rm -rf "$var_dir"; say "deleted $var_dir"; fi
    if [ -e "$env_file" ]; then rm -f "$env_file"; say "deleted $env_file"; fi
    rmdir "$(dirname "$env_file")" 2>/dev/null || true
    if [ "$in_place" = 0 ] && [ -f "$dir/manage.py" ] && [ -f "$dir/xmailadmin/settings.py" ]; then
        rm -rf "$dir"
        say "deleted $dir"
    fi
    say "the user $user stays (remove it with: deluser --system $user)"
    exit 0
fi

# --- install -------------------------------------------------------------------

changed=0 # anything the running services would have to be restarted for

# Debian packages and the venv, with Debian's python3: an interpreter under /root (a
# pyenv, say) is out of the service user's reach.
venv_stamp() { cat "$dir/.venv/.requirements.sha256" 2>/dev/null || true; }
before=$(venv_stamp)
[ -x "$dir/.venv/bin/python" ] || before=""
env PATH="$SYSTEM_PATH" VENV="$dir/.venv" "$SRC/scripts/setup.sh" run
[ "$(venv_stamp)" = "$before" ] || changed=1

# The code: a copy owned by root that the service user can read but not change.
sync_code() {
    local src=$SRC dest=$dir rel n=0
    local prune=(-path ./.venv -o -path ./var -o -path ./.git -o -path ./.cache
        -o -path ./tests/artifacts -o -name __pycache__ -o -name .pytest_cache
        -o -name .ruff_cache -o -name '*.pyc')
    install -d -m 0755 "$dest"
    while IFS= read -r -d '' rel; do
        if [ -d "$src/$rel" ] && [ ! -L "$src/$rel" ]; then
            [ -d "$dest/$rel" ] || { install -d -m 0755 "$dest/$rel"; n=$((n + 1)); }
        elif [ -L "$src/$rel" ]; then
            if [ "$(readlink "$src/$rel")" != "$(readlink "$dest/$rel" 2>/dev/null)" ]; then
                rm -rf "${dest:?}/$rel"
                cp -P "$src/$rel" "$dest/$rel"
                n=$((n + 1))
            fi
        elif [[ $rel == *.mo && "${src}/${rel%.mo}.po" -nt "$src/$rel" ]]; then
            : # older than its .po: compiled below instead
        elif ! cmp -s "$src/$rel" "$dest/$rel"; then
            rm -rf "${dest:?}/$rel"
            cp -p "$src/$rel" "$dest/$rel"
            n=$((n + 1))
        fi
    done < <(cd "$src" && find . -mindepth 1 \( "${prune[@]}" \) -prune -o -print0)
    # What the checkout no longer has. (No -depth: find ignores -prune with it, and
    # would walk into .venv and var/.) The list first, then remove; an entry inside a
    # folder removed before is gone already.
    local stale=()
    while IFS= read -r -d '' rel; do
        [ -e "$src/$rel" ] || [ -L "$src/$rel" ] || stale+=("$rel")
    done < <(cd "$dest" && find . -mindepth 1 \( "${prune[@]}" \) -prune -o -print0)
    for rel in "${stale[@]}"; do
        if [ -e "$dest/$rel" ] || [ -L "$dest/$rel" ]; then
            rm -rf "${dest:?}/$rel"
            n=$((n + 1))
        fi
    done
    # Readable for the service user, writable by root only (umask of the checkout aside).
    (cd "$dest" && find . -mindepth 1 \( "${prune[@]}" \) -prune -o ! -type l \
        \( ! -perm -u=r -o ! -perm -go=r -o -perm /go=w -o \( -perm -u=x ! -perm -go=x \) \) \
        -exec chmod u+r,go+rX,go-w {} +)
    (cd "$dest" && find . -mindepth 1 \( "${prune[@]}" \) -prune -o -user "$user" \
        -exec chown -h root:root {} +)
    if [ "$n" -gt 0 ]; then
        say "copied the checkout to $dest ($n changes)"
        changed=1
    fi
}

# The service user.
if ! getent passwd "$user" >/dev/null; then
    if command -v adduser >/dev/null; then
        adduser --system --group --home "$home" --shell /usr/sbin/nologin --quiet "$user"
    else
        useradd --system --user-group --home-dir "$home" --create-home \
            --shell /usr/sbin/nologin "$user"
    fi
    say "created the system user $user (home $home)"
fi
group=$(id -gn "$user")
home=$(getent passwd "$user" | cut -d: -f6)
if [ ! -d "$home" ]; then install -d -o "$user" -g "$group" -m 0750 "$home"; fi

if [ "$in_place" = 0 ]; then sync_code; fi

# The service user must be able to start the venv's interpreter and read the code.
if ! setpriv --reuid="$user" --regid="$group" --init-groups -- \
    "$dir/.venv/bin/python" -c 'import celery, django, gunicorn' 2>/dev/null; then
    die "$user cannot run $dir/.venv/bin/python (interpreter: $(readlink -f "$dir/.venv/bin/python"))
or read $dir: a checkout under /root, or a venv made from a python under /root, is out
of its reach. Install into a copy instead: $0 --dir /opt/xmailadmin"
fi

# var/: the service user's alone. Files a root run of run.sh left there become its own.
install -d -m 0700 "$var_dir"
find "$var_dir" \( ! -user "$user" -o ! -group "$group" \) -exec chown -h "$user:$group" {} +
[ "$(stat -c %a "$var_dir")" = 700 ] || chmod 0700 "$var_dir"

# The settings file: REDIS_URL, DATABASE_URL and PORT from this environment, if set.
env_quote() { # systemd EnvironmentFile syntax; quoted only when needed
    if [[ $1 =~ ^[A-Za-z0-9._~:/?#@!%+=,*-]*$ ]]; then
        printf '%s' "$1"
    else
        local v=${1//\\/\\\\}
        v=${v//\"/\\\"}
        printf '"%s"' "$v"
    fi
}
install -d -m 0750 -o root -g "$group" "$(dirname "$env_file")"
tmp=$work/env
if [ -f "$env_file" ]; then
    cat "$env_file" > "$tmp"
else
    printf '%s\n' "# xmailadmin settings for its systemd units (docs/panel.md lists them)." \
        "# Written by scripts/install-service.sh; restart after a change:" \
        "#   systemctl restart xmailadmin.target" > "$tmp"
fi
set_keys=()
# A mail server whose worker joins another machine's panel names itself and its queue.
for key in DATABASE_URL REDIS_URL PORT XMAILADMIN_OUTBOX XMAILADMIN_SERVER_NAME \
    XMAILADMIN_CELERY_QUEUE; do
    value=${!key:-}
    [ -n "$value" ] || continue
    if [ "$key" = XMAILADMIN_OUTBOX ]; then path_ok "$value" || die "$key: an absolute path"; fi
    case $key in XMAILADMIN_SERVER_NAME | XMAILADMIN_CELERY_QUEUE)
        [[ $value =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$ ]] || die "$key: letters, digits, . _ -" ;;
    esac
    [[ $value != *$'\n'* ]] || die "$key: no line breaks"
    # systemd expands $NAME in an EnvironmentFile, quoted or not: in a URL write %24.
    [[ $value != *'$'* ]] || die "$key: no \$ (systemd would expand it; in a URL write %24)"
    if [ "$key" = PORT ] && ! { [[ $value =~ ^[1-9][0-9]{0,4}$ ]] && ((value <= 65535)); }; then
        die "PORT: 1-65535"
    fi
    LINE="$key=$(env_quote "$value")" KEY=$key awk '
        BEGIN { line = ENVIRON["LINE"]; key = ENVIRON["KEY"] "="; done = 0 }
        index($0, key) == 1 { if (!done) print line; done = 1; next }
        { print }
        END { if (!done) print line }' "$tmp" > "$tmp.new"
    mv -f "$tmp.new" "$tmp"
    set_keys+=("$key")
done
if [ -f "$env_file" ] && cmp -s "$tmp" "$env_file" \
    && [ "$(stat -c %U:%G:%a "$env_file")" = "root:$group:640" ]; then
    :
else
    install -m 0640 -o root -g "$group" "$tmp" "$env_file"
    say "wrote $env_file (0640 root:$group)${set_keys[*]:+ with ${set_keys[*]} (values not shown)}"
    changed=1
fi

# The units' environment (Environment= of the web unit, then the settings file), for
# the management commands: they run exactly as the services will.
service_env=("HOME=$home" "USER=$user" "LOGNAME=$user" "SHELL=/usr/sbin/nologin")
while IFS= read -r line; do
    service_env+=("$line")
done < <(render xmailadmin-web.service | sed -n 's/^Environment=//p')
while IFS= read -r line || [ -n "$line" ]; do
    [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
    [[ $line =~ ^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
    key=${BASH_REMATCH[1]} value=${BASH_REMATCH[2]}
    if [[ $value =~ ^\"(.*)\"$ ]]; then
        value=${BASH_REMATCH[1]}
        value=$(printf '%s' "$value" | sed -e 's/\\\([\\"$]\)/\1/g')
    elif [[ $value =~ ^\'(.*)\'$ ]]; then
        value=${BASH_REMATCH[1]}
    fi
    service_env+=("$key=$value")
    [ "$key" != XMAILADMIN_OUTBOX ] || outbox_dir=$value
done < "$env_file"
path_ok "$outbox_dir" || die "XMAILADMIN_OUTBOX: an absolute path without special characters"
manage() {
    (cd "$dir" && umask 077 && setpriv --reuid="$user" --regid="$group" --init-groups -- \
        env -i "${service_env[@]}" "$dir/.venv/bin/python" manage.py "$@")
}

# Translations: the compiled .mo files are committed; recompile one only when its .po
# is newer and gettext is there (as run.sh does). The code belongs to root.
# (sync_code leaves such a .mo to this step, so that a second run copies nothing.)
for po in "$dir"/xmailadmin/locale/*/LC_MESSAGES/django.po; do
    mo=${po%.po}.mo
    if [ ! -f "$mo" ] || [ "$po" -nt "$mo" ]; then
        if ! command -v msgfmt >/dev/null; then
            echo "warning: $mo is older than its .po, and msgfmt is missing (apt-get install gettext)" >&2
            [ -f "$mo" ] || cp -p "$SRC/${mo#"$dir"/}" "$mo"
            continue
        fi
        msgfmt --check-format -o "$work/django.mo" "$po"
        if cmp -s "$work/django.mo" "$mo"; then
            touch -r "$work/django.mo" "$mo" # newer than the .po: not compiled again
        else
            install -m 0644 "$work/django.mo" "$mo"
            changed=1
        fi
    fi
done

say "preparing (migrate, collectstatic, check, createadmin as $user)"
# migrate only when a migration is unapplied: then a second run writes nothing.
manage migrate --check -v0 >/dev/null 2>&1 || manage migrate --noinput -v0
manage collectstatic --noinput -v0
manage check >/dev/null
# Into a variable, never a terminal: createadmin prints the password only to a tty.
login=$(manage createadmin)
# xmail-sendmail for the applications, and the outbox it drops into, owned by the
# service user: root's work (a link in sbin, a chown), with the service's settings, so
# that it is the outbox the worker delivers from.
(cd "$dir" && umask 022 && env -i "${service_env[@]}" "$dir/.venv/bin/python" \
    manage.py install_sendmail --owner "$user" --sbin "$sbin_dir") | sed 's/^/== xmailadmin: /'

new_units=$(write_units "$unit_dir")
[ -z "$new_units" ] || { say "units written to $unit_dir: ${new_units//$'\n'/ }"; changed=1; }
if [ "$worker_only" = 1 ]; then
    for unit in "${WEB_AND_BEAT[@]}"; do
        [ -e "$unit_dir/$unit" ] || continue
        [ "$systemd" = 0 ] || systemctl disable --now "$unit" 2>/dev/null || true
        rm -f "$unit_dir/$unit"
        say "removed $unit (a worker-only machine)"
        new_units+=$'\n'$unit
    done
fi

port=8000
while IFS= read -r line; do
    case $line in PORT=*) port=${line#PORT=} ;; esac
done < <(printf '%s\n' "${service_env[@]}")

if [ "$systemd" = 1 ]; then
    [ -z "$new_units" ] || systemctl daemon-reload
    if systemctl is-active --quiet xmailadmin.target && [ "$changed" = 1 ]; then
        systemctl restart xmailadmin.target
        say "restarted xmailadmin.target"
    fi
    systemctl enable --quiet --now xmailadmin.target
    state="running (systemctl status xmailadmin.target), started at every boot"
else
    why="PID 1 is $(cat /proc/1/comm 2>/dev/null || echo unknown), not systemd"
    [ "$unit_dir" = "$DEFAULT_UNIT_DIR" ] || why="the units went to SYSTEMD_UNIT_DIR=$unit_dir"
    state="not started: $why. On a machine booted with systemd:
     systemctl daemon-reload && systemctl enable --now xmailadmin.target
   To try the panel here without systemd: $SRC/scripts/run.sh (in the foreground)"
fi

where="   URL:      http://127.0.0.1:$port/"
[ "$worker_only" = 0 ] || where="   Worker:   takes this server's jobs for the panel elsewhere (no web server here)"
cat <<TXT
== xmailadmin is installed in $dir, running as $user
$where
$(printf '%s\n' "$login" | sed 's/^/   /')
$([ -f "$var_dir/admin_password" ] && echo "   Read it once: sudo cat $var_dir/admin_password")
   Services: $state
   Logs:     journalctl -u xmailadmin-web -u xmailadmin-worker -u xmailadmin-beat
   Settings: $env_file (then: systemctl restart xmailadmin.target)
   Remove:   $0 --uninstall (keeps the data; --purge deletes it)
TXT
