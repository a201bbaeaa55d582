# Helpers shared by the .ci/interop-*.sh scripts.
# Source it after setting INTEROP_NAME (the prefix of every message) and
# MAX_OFFSET (seconds).

step() { printf '\n==> %s: %s\n' "$INTEROP_NAME" "$*"; }

# install_missing COMMAND:PACKAGE...: installs with apt the packages whose
# command is not on the PATH. While apt runs, Debian's policy-rc.d
# convention keeps a package from starting its service (chronyd with the
# packaged configuration, which points at a public pool).
install_missing() {
    local pair packages=()
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || packages+=("${pair#*:}")
    done
    [ "${#packages[@]}" -gt 0 ] || return 0
    step "installing ${packages[*]}"
    local policy_created=0 status=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        policy_created=1
    fi
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "${packages[@]}" || status=$?
    if [ "$policy_created" = 1 ]; then
        rm -f /usr/sbin/policy-rc.d
    fi
    return "$status"
}

# check_offset WHAT OFFSET: |OFFSET| < MAX_OFFSET seconds, or exit 1.
check_offset() {
    if ! awk -v o="$2" -v m="$MAX_OFFSET" 'BEGIN { if (o < 0) o = -o; exit !(o < m) }'; then
        echo "$INTEROP_NAME: $1 measured an offset of $2 s, not under $MAX_OFFSET s"
        exit 1
    fi
    echo "$INTEROP_NAME: $1 offset $2 s: ok"
}

# wait_for_log PID LOG PATTERN WHAT: waits, at most 10 s, until LOG has a
# line matching PATTERN (grep -E) while PID runs; exits 1 with the log
# otherwise ("WHAT did not start").
wait_for_log() {
    local pid=$1 log=$2 pattern=$3 what=$4
    for _ in $(seq 100); do
        if grep -qE "$pattern" "$log"; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    cat "$log"
    echo "$INTEROP_NAME: $what did not start"
    exit 1
}

# start_serve_on ADDR SECONDS LOG ARGS...: starts ntp-daemon ($DAEMON) as
# a primary server of this machine's clock (--serve ADDR --local 1, no
# sources, the model clock: the system clock is only read; every client
# allowed unless ARGS say otherwise) for SECONDS in the background (its
# pid in serve_pid) and waits, at most 10 s, until it listens; exits 1
# with its log otherwise.
start_serve_on() {
    local address=$1 seconds=$2 log=$3
    shift 3
    "$DAEMON" --serve "$address" --local 1 --default-action allow \
        --duration "$seconds" "$@" >"$log" 2>&1 &
    serve_pid=$!
    wait_for_log "$serve_pid" "$log" 'serving on' "ntp-daemon --serve"
}

# stop_serve LOG: SIGINT to the server of start_serve_on; prints its
# counters lines (served, and NTS-KE with NTS).
stop_serve() {
    kill -INT "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
    serve_pid=""
    grep -E '(served|NTS-KE): ' "$1" | grep -v 'listening' || true
}

# served_counters LOG: the counters of the server's "served:" line in LOG
# (plain or JSON), e.g. "received=4 answered=4 ...".
served_counters() {
    sed -n 's/.*served: \([^"]*\).*/\1/p' "$1" | tail -n 1
}

# start_daemon_on ADDR SECONDS LOG PATTERN ARGS...: starts ntp-daemon
# ($DAEMON) serving on ADDR for SECONDS with JSON logs in the background
# (its pid in daemon_pid) and waits, at most 10 s, until LOG has a line
# matching PATTERN; exits 1 with its log otherwise.
start_daemon_on() {
    local address=$1 seconds=$2 log=$3 pattern=$4
    shift 4
    "$DAEMON" --serve "$address" --duration "$seconds" --json "$@" >"$log" 2>&1 &
    daemon_pid=$!
    wait_for_log "$daemon_pid" "$log" "$pattern" ntp-daemon
}

# stop_daemon LOG: SIGTERM to ntp-daemon; prints the counters line its
# server logs as it stops.
stop_daemon() {
    kill -TERM "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
    daemon_pid=""
    grep '"type":"served"' "$1" || true
}

# stop_pid PID: stops a background process of ours, if it still runs.
stop_pid() {
    if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
        kill "$1" 2>/dev/null || true
        wait "$1" 2>/dev/null || true
    fi
}

# make_cert NAME DIR: a self-signed P-256 certificate for localhost and
# 127.0.0.1, valid two days, made at test time: DIR/NAME-cert.pem and
# DIR/NAME-key.pem. Marked as no CA (basicConstraints CA:FALSE): webpki
# refuses a CA certificate as a server's own.
make_cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
        -addext basicConstraints=critical,CA:FALSE \
        -keyout "$2/$1-key.pem" -out "$2/$1-cert.pem" 2>"$2/openssl-$1.log"
}

# print_results HEADER: the rows of the array `results` (fields separated
# by |) under HEADER (the same form) as an aligned table.
print_results() {
    {
        echo "$1"
        printf '%s\n' "${results[@]}"
    } | awk -F'|' '
        { for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) }
          if (NF > n) n = NF }
        END {
            for (r = 1; r <= NR; r++) {
                line = ""
                for (i = 1; i <= n; i++) line = line sprintf("%-" w[i] "s  ", cell[r, i])
                sub(/ +$/, "", line)
                print line
                if (r == 1) {
                    line = ""
                    for (i = 1; i <= n; i++) { dash = sprintf("%" w[i] "s", ""); gsub(/ /, "-", dash); line = line dash "  " }
                    sub(/ +$/, "", line)
                    print line
                }
            }
        }'
}
