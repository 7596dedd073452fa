#!/usr/bin/env bash
# Start a few processes and keep them running; scripts/run.sh uses it for web, worker
# and beat.
#
#   scripts/supervise.sh NAME CMD [ARG...] [-- NAME CMD [ARG...]]...
#
# A child that ends (crash, kill, exit) is started again; the others go on untouched,
# so a dead worker never takes the web server down. Each restart is said on stderr
# ("== xmailadmin: worker ended (exit 137), restarting in 1 s"). Backoff: 1 s, then
# doubling up to SUPERVISE_BACKOFF_MAX (10) seconds while the child keeps ending, and
# at most SUPERVISE_MAX_RESTARTS (5) restarts per child in SUPERVISE_WINDOW (60)
# seconds: a sixth waits until the oldest of them is a window old. INT or TERM stops
# every child (TERM, then waits for them) and ends with 130 or 143.
set -uo pipefail

label=${SUPERVISE_LABEL:-xmailadmin}
max_restarts=${SUPERVISE_MAX_RESTARTS:-5}
window=${SUPERVISE_WINDOW:-60}
backoff_max=${SUPERVISE_BACKOFF_MAX:-10}
stop_timeout=${SUPERVISE_STOP_TIMEOUT:-10} # then KILL: a stop never hangs on one child

say() { echo "== $label: $*" >&2; }

names=()    # per child: its name
commands=() # per child: its command line, quoted for eval
group=()
add_child() {
    if [ "${#group[@]}" -lt 2 ]; then
        echo "usage: $0 NAME CMD [ARG...] [-- NAME CMD [ARG...]]..." >&2
        exit 2
    fi
    local quoted
    printf -v quoted '%q ' "${group[@]:1}"
    names+=("${group[0]}")
    commands+=("$quoted")
    group=()
}
for arg in "$@"; do
    if [ "$arg" = "--" ]; then add_child; else group+=("$arg"); fi
done
add_child

declare -A child_of # pid -> child index
pids=()             # per child: its pid, "" while it waits for a restart
due=()              # per child: when to start it again (epoch seconds), or ""
restarts=()         # per child: epoch seconds of its recent restarts
timer=""            # pid of the sleep that wakes the loop for the next due restart
stopping=0

start_child() {
    local i=$1
    # exec: the pid is the child's own, so TERM reaches it and not a wrapper shell.
    # Background jobs of a non-interactive shell ignore SIGINT: Ctrl-C reaches
    # only this script, which stops the children with TERM.
    (eval "exec ${commands[i]}") &
    pids[i]=$!
    child_of[$!]=$i
    due[i]=""
}

arm_timer() {
    if [ -n "$timer" ]; then
        kill "$timer" 2>/dev/null
        wait "$timer" 2>/dev/null
        timer=""
    fi
    local next="" t
    for t in "${due[@]}"; do
        if [ -n "$t" ] && { [ -z "$next" ] || [ "$t" -lt "$next" ]; }; then next=$t; fi
    done
    [ -z "$next" ] && return
    local delay=$((next - EPOCHSECONDS))
    [ "$delay" -lt 0 ] && delay=0
    sleep "$delay" &
    timer=$!
}

schedule_restart() { # child index, exit status
    local i=$1 status=$2 now=$EPOCHSECONDS kept=() t
    for t in ${restarts[i]:-}; do
        [ $((now - t)) -lt "$window" ] && kept+=("$t")
    done
    local count=${#kept[@]} delay
    if [ "$count" -ge "$max_restarts" ]; then
        delay=$((kept[count - max_restarts] + window - now))
        [ "$delay" -lt 1 ] && delay=1
        say "${names[i]} ended (exit $status), restarting in $delay s" \
            "($count restarts in the last $window s)"
    else
        delay=$((1 << count))
        [ "$delay" -gt "$backoff_max" ] && delay=$backoff_max
        say "${names[i]} ended (exit $status), restarting in $delay s"
    fi
    kept+=($((now + delay)))
    restarts[i]="${kept[*]}"
    due[i]=$((now + delay))
}

stop_all() {
    [ "$stopping" = 1 ] && return
    stopping=1
    say "stopping ${names[*]}"
    local live=()
    for pid in "${pids[@]}" $timer; do [ -n "$pid" ] && live+=("$pid"); done
    [ "${#live[@]}" -gt 0 ] && kill -TERM "${live[@]}" 2>/dev/null
    local deadline=$((EPOCHSECONDS + stop_timeout)) left=("${live[@]}")
    while [ "${#left[@]}" -gt 0 ] && [ "$EPOCHSECONDS" -lt "$deadline" ]; do
        local still=()
        for pid in "${left[@]}"; do running "$pid" && still+=("$pid"); done
        left=("${still[@]}")
        [ "${#left[@]}" -gt 0 ] && sleep 0.1
    done
    [ "${#left[@]}" -gt 0 ] && kill -KILL "${left[@]}" 2>/dev/null
    wait 2>/dev/null
}

running() { # a process that has not ended (an unreaped child is a zombie: ended)
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM

for i in "${!names[@]}"; do start_child "$i"; done

while :; do
    ended=""
    wait -n -p ended
    status=$?
    [ "$stopping" = 1 ] && break
    [ -z "$ended" ] && continue # interrupted by a signal whose trap returned
    if [ "$ended" = "$timer" ]; then
        timer=""
        for i in "${!names[@]}"; do
            if [ -n "${due[i]}" ] && [ "${due[i]}" -le "$EPOCHSECONDS" ]; then
                start_child "$i"
            fi
        done
    elif [ -n "${child_of[$ended]:-}" ]; then
        i=${child_of[$ended]}
        unset "child_of[$ended]"
        pids[i]=""
        schedule_restart "$i" "$status"
    fi
    arm_timer
done
