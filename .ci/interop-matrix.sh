#!/usr/bin/env bash
# Interoperability matrix: our server program (`ntp-daemon --serve --local
# 1`, with its defaults: every client rate-limited) and our clients
# (the `sntp` example and the client system in the `demo` example) against
# the NTP implementations Debian ships, each in both directions where it
# has both roles (issue 14):
#
#   clients of our server: chronyd -Q, ntpdig, NTPsec ntpd (`server` and
#                          `peer`), ntpdate (ntpsec-ntpdate), OpenNTPD,
#                          systemd-timesyncd, busybox ntpd, chronyd `peer`
#                          (mode 1), a W32Time-shaped mode-1 probe
#   servers for our sntp and demo: chronyd, NTPsec ntpd, OpenNTPD, busybox
#
# Debian builds its busybox packages without the ntpd applet: when they
# lack it, busybox is built with only that applet from Debian's busybox
# source package (about 20 s, kept in $TARGET/interop-debs).
#
# Every cell runs in its own pair of network namespaces joined by a veth
# pair: ours at 10.123.0.1, the peer at 10.123.0.2 (with its own
# 127.0.0.1), so daemons that insist on port 123 get it without meeting
# each other or the host. The cells run in parallel, each bounded by
# timeouts. Nothing can set the real clock: every peer runs without
# CAP_SYS_TIME (setpriv drops it from the bounding set, so not even root
# inside gets it back), chronyd also with -x, and our programs only read
# the clock (the demo steers a model clock).
#
# Writes $RESULTS/table.md (peer, version, direction, what was checked,
# offset measured over the veth pair, result) and $RESULTS/logs/; with
# --readme, also replaces the generated table in README.md's
# "Interoperability" section. Exit 1 if any cell fails; a cell that cannot
# run here is reported as such, with the reason, and does not fail the
# run.
#
# Runs as root (namespaces, port 123) from .ci/run after the other interop
# steps; installs what it needs with apt behind install_missing's guard.
# Daemons that conflict with chrony (Debian's `Conflicts: time-daemon`) are
# unpacked with apt-get download + dpkg-deb -x, never installed.
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_OFFSET=0.010
INTEROP_NAME=interop-matrix
# shellcheck source=interop-lib.sh
source .ci/interop-lib.sh

README_UPDATE=0
case "${1:-}" in
"") ;;
--readme) README_UPDATE=1 ;;
*)
    echo "usage: .ci/interop-matrix.sh [--readme]" >&2
    exit 2
    ;;
esac

# Absolute: apt resolves relative Dir:: paths against /etc/apt, not here.
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-target}")
RESULTS=${NTP_INTEROP_RESULTS:-$TARGET/interop-matrix}
DEBS=$TARGET/interop-debs
OURS_ADDR=10.123.0.1
PEER_ADDR=10.123.0.2
# How long the client system (demo) runs against each server.
DEMO_SECONDS=${NTP_INTEROP_DEMO_SECONDS:-30}
# How long OpenNTPD may take to call itself synchronized (cell_openntpd).
OPENNTPD_WAIT=${NTP_INTEROP_OPENNTPD_WAIT:-170}
# The delaying relay in front of our server for OpenNTPD (cell_openntpd).
RELAY_ADDR=10.123.0.3
started=$(date +%s)

if [ "$(id -u)" != 0 ]; then
    echo "interop-matrix: must run as root (network namespaces, port 123)"
    exit 1
fi

# --- installing the peers ---------------------------------------------------

# install_packages PACKAGE...: installs with apt the packages dpkg does not
# list as installed (libraries the unpacked daemons link against).
install_packages() {
    local package missing=()
    for package in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed'; then
            missing+=("$package")
        fi
    done
    [ "${#missing[@]}" -gt 0 ] || return 0
    step "installing ${missing[*]}"
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
}

# fetch_deb PACKAGE [VERSION]: downloads PACKAGE (VERSION if apt has it,
# else the candidate) and unpacks it to $DEBS/PACKAGE, once; prints nothing.
fetch_deb() {
    local name=$1 version=${2:-} root=$DEBS/$1
    [ -f "$root/.version" ] && return 0
    rm -rf "$DEBS/dl-$name" "$root"
    mkdir -p "$DEBS/dl-$name"
    (
        cd "$DEBS/dl-$name"
        { [ -n "$version" ] && apt-get download "$name=$version"; } ||
            apt-get download "$name" ||
            { apt-get update && apt-get download "$name"; }
    ) >"$DEBS/dl-$name.log" 2>&1 || {
        cat "$DEBS/dl-$name.log"
        return 1
    }
    local deb
    deb=$(ls "$DEBS/dl-$name/"*.deb)
    dpkg-deb -x "$deb" "$root"
    dpkg-deb -f "$deb" Version >"$root/.version"
    rm -rf "$DEBS/dl-$name"
}

# ensure_user NAME HOME: the system user a daemon drops its privileges to,
# as its package's maintainer scripts would create it.
ensure_user() {
    getent passwd "$1" >/dev/null ||
        useradd --system --no-create-home --home-dir "$2" --shell /usr/sbin/nologin "$1"
}

install_missing chronyd:chrony ntpdig:ntpsec-ntpdig ntpdate:ntpsec-ntpdate \
    ip:iproute2 setpriv:util-linux unshare:util-linux gcc:gcc python3:python3 \
    busybox:busybox
# ntpq (in the ntpsec package) needs python3-ntp; NTPsec's ntpd links
# libbsd, libcap and libssl; systemd-timesyncd links systemd's private
# library.
install_packages python3-ntp libbsd0 libcap2 libssl3 libsystemd-shared
step "unpacking ntpsec, openntpd, systemd-timesyncd, busybox-static"
mkdir -p "$DEBS"
fetch_deb ntpsec
fetch_deb openntpd
# The timesyncd matching the installed libsystemd-shared, where apt has it.
fetch_deb systemd-timesyncd "$(dpkg-query -W -f='${Version}' libsystemd-shared)"
fetch_deb busybox-static
ensure_user ntpd /var/lib/openntpd
ensure_user systemd-timesync /

# build_busybox_ntpd DIR: busybox with only the ntpd applet (client and
# server), built from Debian's busybox source package, fetched with apt
# from the deb-src twins of the machine's own sources into private apt
# state under DIR (the system's apt configuration is not touched).
build_busybox_ntpd() {
    local dir=$1 f
    [ -x "$dir/busybox" ] && return 0
    rm -rf "$dir"
    mkdir -p "$dir/parts" "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/src"
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && sed 's/^Types:.*/Types: deb-src/' "$f" >"$dir/parts/$(basename "$f")"
    done
    if [ -f /etc/apt/sources.list ]; then
        sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >"$dir/parts/sources.list"
    fi
    local apt_private=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$dir/parts"
        -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache")
    apt-get "${apt_private[@]}" update >"$dir/apt.log" 2>&1 || return 1
    (cd "$dir/src" && apt-get "${apt_private[@]}" source --download-only busybox) \
        >>"$dir/apt.log" 2>&1 || return 1
    dpkg-source -x "$dir"/src/busybox_*.dsc "$dir/tree" >>"$dir/apt.log" 2>&1 || return 1
    sed -n 's/^Version: //p' "$dir"/src/busybox_*.dsc >"$dir/version"
    make -C "$dir/tree" allnoconfig >"$dir/build.log" 2>&1 || return 1
    sed -i 's/^# CONFIG_NTPD is not set/CONFIG_NTPD=y/;
        s/^# CONFIG_FEATURE_NTPD_SERVER is not set/CONFIG_FEATURE_NTPD_SERVER=y/' "$dir/tree/.config"
    make -C "$dir/tree" oldconfig </dev/null >>"$dir/build.log" 2>&1 || return 1
    make -C "$dir/tree" -j"$(nproc)" busybox >>"$dir/build.log" 2>&1 || return 1
    cp "$dir/tree/busybox" "$dir/busybox" || return 1
    rm -rf "$dir/tree" "$dir/lists" "$dir/cache" "$dir/src" "$dir"/busybox_*
}

BUSYBOX=""
for candidate in "$(command -v busybox)" "$DEBS/busybox-static/bin/busybox"; do
    if [ -x "$candidate" ] && "$candidate" --list 2>/dev/null | grep -qx ntpd; then
        BUSYBOX=$candidate
        BUSYBOX_LABEL=$("$candidate" 2>&1 | sed -n '1s/^BusyBox \(v[^ ]*\).*/\1/p')
        break
    fi
done
if [ -z "$BUSYBOX" ]; then
    step "building busybox's ntpd from Debian's source package (Debian's busybox binaries lack it)"
    install_missing dpkg-source:dpkg-dev make:make bzip2:bzip2
    if build_busybox_ntpd "$DEBS/busybox-ntpd"; then
        BUSYBOX=$DEBS/busybox-ntpd/busybox
        BUSYBOX_LABEL="$(cat "$DEBS/busybox-ntpd/version") (Debian source, ntpd applet only)"
    else
        tail -n 20 "$DEBS/busybox-ntpd/"*.log || true
        echo "$INTEROP_NAME: could not build busybox's ntpd; its cell will say so"
    fi
fi
NTPSEC_NTPD=$DEBS/ntpsec/usr/sbin/ntpd
NTPQ=$DEBS/ntpsec/usr/bin/ntpq
OPENNTPD=$DEBS/openntpd/usr/sbin/ntpd
TIMESYNCD=$DEBS/systemd-timesyncd/lib/systemd/systemd-timesyncd
# /usr/lib is the merged-/usr layout; lib/ the older one.
[ -x "$TIMESYNCD" ] || TIMESYNCD=$DEBS/systemd-timesyncd/usr/lib/systemd/systemd-timesyncd

step "building ntp-daemon, sntp and demo"
cargo build --release --locked -p ntp-daemon --bin ntp-daemon
cargo build --release --locked -p ntp-client --example sntp
cargo build --release --locked -p ntp-demo
DAEMON=$(realpath "$TARGET/release/ntp-daemon")
SNTP=$(realpath "$TARGET/release/examples/sntp")
DEMO=$(realpath "$TARGET/release/ntp-demo")

rm -rf "$RESULTS"
mkdir -p "$RESULTS/logs" "$RESULTS/rows" "$RESULTS/work"
RESULTS=$(realpath "$RESULTS")
LOGS=$RESULTS/logs
WORK=$RESULTS/work
gcc -shared -fPIC -O2 -o "$WORK/noadjtime.so" .ci/interop-noadjtime.c

# --- namespaces, processes, cleanup -----------------------------------------

NS_PREFIX=ntpmx$$
namespaces=()
cell_pids=()
cleanup() {
    local pid ns
    for pid in "${cell_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    # Whatever still runs inside our namespaces was started by this script.
    for ns in "${namespaces[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill "$pid" 2>/dev/null || true
        done
    done
    sleep 0.5
    for ns in "${namespaces[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null || true
        done
        ip netns del "$ns" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# make_pair CELL: namespaces ${NS_PREFIX}oCELL (ours, $OURS_ADDR) and
# ${NS_PREFIX}pCELL (the peer, $PEER_ADDR), joined by a veth pair.
make_pair() {
    local ours=${NS_PREFIX}o$1 peer=${NS_PREFIX}p$1
    namespaces+=("$ours" "$peer")
    ip netns add "$ours"
    ip netns add "$peer"
    ip link add veth0 netns "$ours" type veth peer name veth0 netns "$peer"
    ip -n "$ours" addr add "$OURS_ADDR/24" dev veth0
    ip -n "$peer" addr add "$PEER_ADDR/24" dev veth0
    local ns
    for ns in "$ours" "$peer"; do
        ip -n "$ns" link set lo up
        ip -n "$ns" link set veth0 up
    done
    # Permanent neighbour entries: no ARP exchange delays a first request
    # (it would show as an offset of half the ARP round trip).
    ip -n "$ours" neigh replace "$PEER_ADDR" dev veth0 nud permanent \
        lladdr "$(ip netns exec "$peer" cat /sys/class/net/veth0/address)"
    ip -n "$peer" neigh replace "$OURS_ADDR" dev veth0 nud permanent \
        lladdr "$(ip netns exec "$ours" cat /sys/class/net/veth0/address)"
}

# no_clock NS COMMAND...: runs COMMAND in namespace NS without
# CAP_SYS_TIME (dropped from the bounding set: no exec can regain it).
no_clock() {
    local ns=$1
    shift
    ip netns exec "$ns" setpriv --bounding-set -sys_time --inh-caps -sys_time -- "$@"
}

# start_serve CELL SECONDS [ARGS...]: our server (the daemon serving this
# machine's clock at stratum 1 on its model clock: it only reads the
# system clock) in the cell's own namespace on $OURS_ADDR:123, logging to
# $LOGS/CELL-serve.log; waits (at most 10 s) until it listens. Sets
# SERVE_PID and SERVE_LOG.
start_serve() {
    local ns=${NS_PREFIX}o$1 seconds=$2
    SERVE_LOG=$LOGS/$1-serve.log
    shift 2
    # ip netns exec and setpriv exec the server: $! is its PID (no_clock,
    # a function, would put a subshell between).
    ip netns exec "$ns" setpriv --bounding-set -sys_time --inh-caps -sys_time -- \
        "$DAEMON" --serve "$OURS_ADDR:123" --local 1 --duration "$seconds" "$@" >"$SERVE_LOG" 2>&1 &
    SERVE_PID=$!
    local _
    for _ in $(seq 100); do
        grep -q 'serving on' "$SERVE_LOG" && return 0
        sleep 0.1
    done
    return 1
}

# stop_serve: Ctrl-C to our server; sets SERVE_COUNTERS to the counters it
# logs ("served: ..."), and SERVE_SYMMETRIC / SERVE_ANSWERED from them.
stop_serve() {
    kill -INT "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
    SERVE_COUNTERS=$(sed -n 's/.*served: //p' "$SERVE_LOG")
    SERVE_SYMMETRIC=$(sed -n 's/.* symmetric=\([0-9]*\) .*/\1/p' <<<"$SERVE_COUNTERS")
    SERVE_ANSWERED=$(sed -n 's/.* answered=\([0-9]*\) .*/\1/p' <<<"$SERVE_COUNTERS")
    echo "$INTEROP_NAME: our server's counters: $SERVE_COUNTERS"
}

# end_cell CELL: stops our server and ends every process left in the
# cell's namespaces (all started by this cell).
end_cell() {
    stop_serve
    local ns pid
    for ns in "${NS_PREFIX}o$1" "${NS_PREFIX}p$1"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill "$pid" 2>/dev/null || true
        done
    done
}

# --- results ------------------------------------------------------------------

# row CELL PEER VERSION DIRECTION CHECKED OFFSET_SECONDS|"" RESULT [NOTE]
row() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$2" "$3" "$4" "$5" "$6" "$7" "${8:-}" \
        >>"$RESULTS/rows/$1.tsv"
    printf '%s: %s | %s | %s | offset %s | %s %s\n' "$INTEROP_NAME" "$2" "$4" "$5" \
        "${6:--}" "$7" "${8:-}"
}

# offset_ok SECONDS: |SECONDS| < MAX_OFFSET.
offset_ok() {
    [ -n "$1" ] && awk -v o="$1" -v m="$MAX_OFFSET" 'BEGIN { if (o < 0) o = -o; exit !(o < m) }'
}

# verdict OFFSET [CONDITION_STATUS]: "ok" when the offset is within bounds
# and the condition (default true) held, else "FAIL".
verdict() {
    if [ "${2:-0}" = 0 ] && offset_ok "$1"; then echo ok; else echo FAIL; fi
}

# wait_for SECONDS COMMAND...: runs COMMAND every second until it
# succeeds; false after SECONDS.
wait_for() {
    local deadline=$(($(date +%s) + $1))
    shift
    while [ "$(date +%s)" -lt "$deadline" ]; do
        "$@" && return 0
        sleep 1
    done
    return 1
}

# sntp_check CELL PEER VERSION WHAT: our sntp example in the peer's
# namespace against its 127.0.0.1:123; sets SNTP_OFFSET and SNTP_STRATUM.
sntp_check() {
    local cell=$1 ns=${NS_PREFIX}p$1 out
    out=$LOGS/$cell-sntp.json
    SNTP_OFFSET="" SNTP_STRATUM=""
    if no_clock "$ns" timeout 20 "$SNTP" --json 127.0.0.1:123 >"$out" 2>&1; then
        read -r SNTP_OFFSET SNTP_STRATUM < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(d["offset"], d["stratum"])' "$out")
    fi
}

# demo_check CELL: the client system (demo) in the peer's namespace against
# its 127.0.0.1:123 for $DEMO_SECONDS; sets DEMO_TALLY, DEMO_STRATUM and
# DEMO_OFFSET from the last peers table.
demo_check() {
    local cell=$1 ns=${NS_PREFIX}p$1
    DEMO_TALLY="" DEMO_STRATUM="" DEMO_OFFSET=""
    if no_clock "$ns" timeout $((DEMO_SECONDS + 60)) "$DEMO" --server 127.0.0.1:123 \
        --initial-offset 0 --duration "$DEMO_SECONDS" --json \
        >"$LOGS/$cell-demo.jsonl" 2>"$LOGS/$cell-demo.err"; then
        read -r DEMO_TALLY DEMO_STRATUM DEMO_OFFSET < <(python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
tables = [r for r in rows if r.get("type") == "peers"]
last = tables[-1]["peers"][0]
print(last["tally"], last["stratum"], last["offset_ms"] / 1e3)' "$LOGS/$cell-demo.jsonl") || true
    fi
}

# client_rows CELL PEER VERSION EXPECTED_STRATUM: the sntp and demo rows
# for a peer serving on 127.0.0.1:123 in the cell's peer namespace.
client_rows() {
    local cell=$1 peer=$2 version=$3 stratum=$4 status
    sntp_check "$cell"
    status=1
    [ "$SNTP_STRATUM" = "$stratum" ] && status=0
    row "$cell" "$peer" "$version" "serves our sntp" \
        "answer accepted, stratum ${SNTP_STRATUM:-?} (expected $stratum)" \
        "$SNTP_OFFSET" "$(verdict "$SNTP_OFFSET" "$status")"
    demo_check "$cell"
    status=1
    [ "$DEMO_TALLY" = "*" ] && [ "$DEMO_STRATUM" = "$stratum" ] && status=0
    row "$cell" "$peer" "$version" "serves our client system (demo)" \
        "system peer '${DEMO_TALLY:-none}' after ${DEMO_SECONDS} s, stratum ${DEMO_STRATUM:-?}" \
        "$DEMO_OFFSET" "$(verdict "$DEMO_OFFSET" "$status")"
}

# --- the cells ------------------------------------------------------------------

CHRONY_VERSION=$(dpkg-query -W -f='${Version}' chrony)
NTPSEC_VERSION=$(cat "$DEBS/ntpsec/.version")
NTPDATE_VERSION=$(dpkg-query -W -f='${Version}' ntpsec-ntpdate)
OPENNTPD_VERSION=$(cat "$DEBS/openntpd/.version")
TIMESYNCD_VERSION=$(cat "$DEBS/systemd-timesyncd/.version")

# chronyd: -Q against our server, and serving our sntp and demo.
cell_chrony() {
    local cell=chrony p=${NS_PREFIX}pchrony offset status
    start_serve "$cell" 120 || return 1
    if timeout 40 ip netns exec "$p" chronyd -Q -x -t 20 "pidfile $WORK/$cell-q.pid" \
        "server $OURS_ADDR iburst" >"$LOGS/$cell-q.log" 2>&1; then
        offset=$(sed -n 's/.*System clock wrong by \([-0-9.e]*\) seconds.*/\1/p' "$LOGS/$cell-q.log" | tail -n 1)
    else
        offset=""
    fi
    row "$cell" chronyd "$CHRONY_VERSION" "client of our server" \
        "chronyd -Q accepts the answers (exit 0)" "$offset" "$(verdict "$offset")"

    cat >"$WORK/$cell.conf" <<EOF
port 123
bindaddress 127.0.0.1
cmdport 0
local stratum 3
allow 127.0.0.1
pidfile $WORK/$cell.pid
driftfile $WORK/$cell.drift
EOF
    no_clock "$p" chronyd -x -u root -d -f "$WORK/$cell.conf" >"$LOGS/$cell-server.log" 2>&1 &
    wait_for 15 no_clock "$p" timeout 5 "$SNTP" --timeout 1 127.0.0.1:123 >/dev/null 2>&1 || true
    client_rows "$cell" chronyd "$CHRONY_VERSION" 3
    end_cell "$cell"
}

# ntpdig (NTPsec's SNTP client) and ntpdate (ntpsec-ntpdate, its shim over
# ntpdig) query only.
cell_ntpdig() {
    local cell=ntpdig p=${NS_PREFIX}pntpdig offset status
    start_serve "$cell" 60 || return 1
    # One query each: not while the other cells start (a loaded CPU shows
    # in a single sample).
    sleep 10
    offset=""
    if timeout 30 ip netns exec "$p" ntpdig -j "$OURS_ADDR" >"$LOGS/$cell.json" 2>&1; then
        offset=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["offset"])' "$LOGS/$cell.json") || offset=""
    fi
    row "$cell" ntpdig "$NTPDATE_VERSION" "client of our server" \
        "ntpdig -j: answer accepted (exit 0)" "$offset" "$(verdict "$offset")"
    # "2026-11-27 16:00:00.123456 (+0000) +0.000012 +/- 0.000020 10.123.0.1 s1 no-leap"
    offset=""
    status=1
    if timeout 30 ip netns exec "$p" ntpdate -q "$OURS_ADDR" >"$LOGS/$cell-ntpdate.log" 2>&1; then
        offset=$(awk -v a="$OURS_ADDR" '$0 ~ a { for (i = 1; i < NF; i++) if ($i == "+/-") print $(i - 1) }' \
            "$LOGS/$cell-ntpdate.log" | tail -n 1)
        grep -q " $OURS_ADDR s1 no-leap" "$LOGS/$cell-ntpdate.log" && status=0
    fi
    row "$cell" "ntpdate (ntpsec-ntpdate)" "$NTPDATE_VERSION" "client of our server" \
        "ntpdate -q: query only, exit 0, 's1 no-leap'" "$offset" "$(verdict "$offset" "$status")"
    end_cell "$cell"
}

# NTPsec ntpd: a client of our server (ntpq -p must show it reachable and
# selected), then, synchronized through us at stratum 2, a server for our
# sntp and demo.
# ntpsec_until_selected ASSOCIATION RESTRICT: NTPsec's ntpd in the
# caller's namespace $p for cell $cell, with the association line
# ASSOCIATION to our server and `restrict default RESTRICT`, waited for
# (60 s at most) until `ntpq -p` marks us '*'. Sets the caller's `line`
# (our ntpq row), `offset` (seconds) and `status` (0 when selected).
ntpsec_until_selected() {
    cat >"$WORK/$cell.conf" <<EOF
$1
${NTPSEC_EXTRA:-}
disable kernel
driftfile $WORK/$cell.drift
restrict default $2
restrict 127.0.0.1
EOF
    no_clock "$p" "$NTPSEC_NTPD" -n -c "$WORK/$cell.conf" -p "$WORK/$cell.pid" \
        -l "$LOGS/$cell-ntpd.log" >/dev/null 2>&1 &
    selected() {
        timeout 5 ip netns exec "$p" "$NTPQ" -pn 127.0.0.1 >"$LOGS/$cell-ntpq.txt" 2>&1 &&
            grep -q "^\*$OURS_ADDR " "$LOGS/$cell-ntpq.txt"
    }
    status=1
    wait_for 60 selected && status=0
    # "*10.123.0.1  .LOCL.  1 u  1  8  17  0.0999  0.0277  0.0070" (ms)
    line=$(grep -F "$OURS_ADDR " "$LOGS/$cell-ntpq.txt" | head -n 1 || true)
    offset=$(awk '{ printf "%.9f", $9 / 1000 }' <<<"$line")
}

cell_ntpsec() {
    local cell=ntpsec p=${NS_PREFIX}pntpsec line offset status
    start_serve "$cell" 150 || return 1
    # A SHA-256 key NTPsec trusts, for the keyed sntp row below (issue 21,
    # item 12): NTPsec takes only 4-, 20- and 24-octet MACs, so our client
    # sends NTPv4 with the digest truncated to 20 octets (--ntp-version 4).
    local secret
    secret=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
    echo "3 SHA256 $secret" >"$WORK/$cell.keys"
    chmod 600 "$WORK/$cell.keys"
    NTPSEC_EXTRA="keys $WORK/$cell.keys
trustedkey 3" ntpsec_until_selected "server $OURS_ADDR iburst minpoll 3 maxpoll 4" \
        "kod limited nomodify nopeer noquery"
    row "$cell" "NTPsec ntpd" "$NTPSEC_VERSION" "client of our server" \
        "ntpq -p: reach $(awk '{ print $7 }' <<<"$line"), selected '$(cut -c1 <<<"$line")'" \
        "$offset" "$(verdict "$offset" "$status")"
    client_rows "$cell" "NTPsec ntpd" "$NTPSEC_VERSION" 2
    keyed_sntp_row "$cell" "NTPsec ntpd" "$NTPSEC_VERSION" "$WORK/$cell.keys"
    end_cell "$cell"
}

# keyed_sntp_row CELL PEER VERSION KEYS: our sntp with SHA-256 key 3 of
# the ntpd-format KEYS, as NTPv4 with a truncated MAC, against the peer's
# 127.0.0.1:123; it exits 0 only with an answer whose MAC verifies.
keyed_sntp_row() {
    local cell=$1 ns=${NS_PREFIX}p$1 out offset=""
    out=$LOGS/$cell-sntp-sha256.json
    if no_clock "$ns" timeout 20 "$SNTP" --json --keys "$4" --keys-format ntpd --key 3 \
        --ntp-version 4 127.0.0.1:123 >"$out" 2>&1; then
        offset=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["offset"])' "$out")
    fi
    row "$cell" "$2" "$3" "serves our sntp, SHA-256 key" \
        "NTPv4 request with a 20-octet SHA-256 MAC (--ntp-version 4), answer's MAC verified" \
        "$offset" "$(verdict "$offset")"
}

# NTPsec ntpd with `peer`: NTPsec 1.2.2 has no symmetric mode and sends
# client requests (mode 3) for it; checked that it still selects us, and
# the mode it sent is read from our counters.
cell_ntpsec_peer() {
    local cell=ntpsecpeer p=${NS_PREFIX}pntpsecpeer line offset status
    start_serve "$cell" 70 || return 1
    ntpsec_until_selected "peer $OURS_ADDR minpoll 3 maxpoll 4" "kod limited nomodify noquery"
    end_cell "$cell"
    local sent="mode 3"
    [ "${SERVE_SYMMETRIC:-0}" != 0 ] && sent="mode 1 ($SERVE_SYMMETRIC of $SERVE_ANSWERED)"
    row "$cell" "NTPsec ntpd" "$NTPSEC_VERSION" "client of our server, 'peer' directive" \
        "ntpq -p: reach $(awk '{ print $7 }' <<<"$line"), selected '$(cut -c1 <<<"$line")'; it sent $sent" \
        "$offset" "$(verdict "$offset" "$status")"
}

# chronyd with `peer`: symmetric active (mode 1), as a daemon (chronyd -Q
# sends no peer packets: it has no NTP port).
cell_chrony_peer() {
    local cell=chronypeer p=${NS_PREFIX}pchronypeer offset="" mode="" status=1
    # A poll a second (to be quick) is over the default rate limit.
    start_serve "$cell" 60 --default-action allow || return 1
    mkdir -m 770 "$WORK/$cell"
    cat >"$WORK/$cell/chrony.conf" <<EOF
peer $OURS_ADDR minpoll 0 maxpoll 0 iburst
port 123
bindcmdaddress $WORK/$cell/chronyd.sock
pidfile $WORK/$cell/chronyd.pid
driftfile $WORK/$cell/drift
EOF
    no_clock "$p" chronyd -x -u root -d -f "$WORK/$cell/chrony.conf" >"$LOGS/$cell.log" 2>&1 &
    selected() {
        timeout 5 ip netns exec "$p" chronyc -h "$WORK/$cell/chronyd.sock" -n -c sources \
            >"$LOGS/$cell-sources.csv" 2>&1 &&
            grep -q "^=,\*,$OURS_ADDR," "$LOGS/$cell-sources.csv"
    }
    if wait_for 30 selected; then
        # A few more exchanges (one a second): ntpdata shows the last one.
        sleep 5
        timeout 5 ip netns exec "$p" chronyc -h "$WORK/$cell/chronyd.sock" -n ntpdata "$OURS_ADDR" \
            >"$LOGS/$cell-ntpdata.txt" 2>&1 || true
        mode=$(sed -n 's/^Mode *: //p' "$LOGS/$cell-ntpdata.txt")
        offset=$(sed -n 's/^Offset *: \([-+0-9.e]*\) seconds/\1/p' "$LOGS/$cell-ntpdata.txt")
    fi
    end_cell "$cell"
    # Every request was mode 1, every answer mode 2.
    [ "$mode" = "Symmetric passive" ] && [ "${SERVE_SYMMETRIC:-0}" -gt 0 ] &&
        [ "$SERVE_SYMMETRIC" = "$SERVE_ANSWERED" ] && status=0
    row "$cell" chronyd "$CHRONY_VERSION" "symmetric-active peer of our server (mode 1)" \
        "chronyc sources '=*'; ntpdata: our mode '${mode:-?}'; $SERVE_SYMMETRIC of $SERVE_ANSWERED answers in mode 2" \
        "$offset" "$(verdict "$offset" "$status")"
}

# A W32Time-shaped request (mode 1, NTPv3, LI 3, every field filled) and
# the same with the client flag (mode 3): no Windows here, a probe that
# sends the packets W32Time sends.
cell_w32time() {
    local cell=w32time p=${NS_PREFIX}pw32time offset="" status=1
    start_serve "$cell" 30 || return 1
    sleep 10
    if timeout 20 ip netns exec "$p" python3 .ci/interop-w32time-probe.py "$OURS_ADDR" \
        >"$LOGS/$cell.json" 2>"$LOGS/$cell.err"; then
        offset=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["offset"])' "$LOGS/$cell.json")
        status=0
    fi
    end_cell "$cell"
    [ "$SERVE_SYMMETRIC" = 4 ] && [ "$SERVE_ANSWERED" = 5 ] || status=1
    row "$cell" "W32Time-shaped requests (probe)" "NTPv3, mode 1 and 3" \
        "symmetric-active peer of our server (mode 1)" \
        "mode 1 answered in mode 2, mode 3 in mode 4, NTPv3, origin = request transmit" \
        "$offset" "$(verdict "$offset" "$status")"
}

# OpenNTPD: a client of our server (`ntpd -d` logs the replies and "peer
# now valid"), then a server (`listen on`) for our sntp and demo once it
# calls itself synchronized, at its second clock update, which needs
# adjtime() to succeed: the noadjtime shim lets it believe so (it still
# has no CAP_SYS_TIME). It reaches our server through
# .ci/interop-delay-relay.py at $RELAY_ADDR, which slows every exchange
# after the first by 1 ms each way (offsets unbiased) so that the first
# reply has the least delay: then the second update comes one reply after
# the first instead of up to eight (see the relay's docstring).
cell_openntpd() {
    local cell=openntpd o=${NS_PREFIX}oopenntpd p=${NS_PREFIX}popenntpd offset status=1 cell_start
    cell_start=$(date +%s)
    start_serve "$cell" 260 || return 1
    ip -n "$o" addr add "$RELAY_ADDR/24" dev veth0
    ip -n "$p" neigh replace "$RELAY_ADDR" dev veth0 nud permanent \
        lladdr "$(ip netns exec "$o" cat /sys/class/net/veth0/address)"
    ip netns exec "$o" python3 .ci/interop-delay-relay.py "$RELAY_ADDR:123" "$OURS_ADDR:123" 1 \
        >"$LOGS/$cell-relay.log" 2>&1 &
    wait_for 10 grep -q '^relaying' "$LOGS/$cell-relay.log" || return 1
    cat >"$WORK/$cell.conf" <<EOF
listen on 127.0.0.1
server $RELAY_ADDR
EOF
    # OpenNTPD's drift file and control socket live in /var/lib/openntpd:
    # a private tmpfs there, in a mount namespace of its own.
    no_clock "$p" unshare -m sh -c '
        mount -t tmpfs none /var/lib &&
        mkdir -p /var/lib/openntpd/db /var/lib/openntpd/run &&
        LD_PRELOAD="$1" exec "$2" -d -v -f "$3"' \
        sh "$WORK/noadjtime.so" "$OPENNTPD" "$WORK/$cell.conf" >"$LOGS/$cell.log" 2>&1 &
    wait_for 60 grep -q "peer $RELAY_ADDR now valid" "$LOGS/$cell.log" && status=0
    # "reply from 10.123.0.3: offset 0.000029 delay 0.000077, next query 7s"
    offset=$(sed -n "s/^reply from $RELAY_ADDR: offset \([-0-9.]*\) .*/\1/p" "$LOGS/$cell.log" | tail -n 1)
    row "$cell" OpenNTPD "$OPENNTPD_VERSION" "client of our server (through the relay)" \
        "ntpd -d: replies with offsets, 'peer now valid'" "$offset" "$(verdict "$offset" "$status")"
    # Synchronized at its ninth reply, about 110 s in; wait at most until
    # OPENNTPD_WAIT s after the start, then judge what it serves.
    synced() {
        no_clock "$p" timeout 5 "$SNTP" --timeout 1 --json 127.0.0.1:123 >"$LOGS/$cell-probe.txt" 2>&1
    }
    wait_for $((cell_start + OPENNTPD_WAIT - $(date +%s))) synced || true
    if grep -q 'unsynchronized' "$LOGS/$cell-probe.txt"; then
        local why="still unsynchronized after ${OPENNTPD_WAIT} s (its second clock update had not come); our sntp refused its answer as it must: $(cat "$LOGS/$cell-probe.txt")"
        row "$cell" OpenNTPD "$OPENNTPD_VERSION" "serves our sntp" "answer read" "" "n/a" "$why"
        row "$cell" OpenNTPD "$OPENNTPD_VERSION" "serves our client system (demo)" "not started" "" "n/a" "$why"
    else
        client_rows "$cell" OpenNTPD "$OPENNTPD_VERSION" 2
    fi
    end_cell "$cell"
}

# systemd-timesyncd, outside systemd: as its own user (it then keeps no
# capabilities), its configuration and state on private tmpfs mounts, no
# D-Bus (it waits for the bus socket and works without it).
cell_timesyncd() {
    local cell=timesyncd p=${NS_PREFIX}ptimesyncd offset="" stratum="" status=1
    start_serve "$cell" 60 || return 1
    # It measures once: not while the other cells start.
    sleep 10
    ip netns exec "$p" unshare -m sh -c '
        mount -t tmpfs none /run &&
        mount -t tmpfs none /var/lib &&
        mkdir -p /run/systemd/timesyncd.conf.d /run/systemd/timesync /var/lib/systemd/timesync &&
        printf "[Time]\nNTP=%s\nFallbackNTP=\n" "$1" >/run/systemd/timesyncd.conf.d/interop.conf &&
        chown systemd-timesync: /run/systemd/timesync /var/lib/systemd/timesync &&
        SYSTEMD_LOG_LEVEL=debug SYSTEMD_LOG_TARGET=console exec timeout 30 \
            setpriv --reuid systemd-timesync --regid systemd-timesync --clear-groups \
            --bounding-set -all --inh-caps -all -- "$2"' \
        sh "$OURS_ADDR" "$TIMESYNCD" >"$LOGS/$cell.log" 2>&1 &
    if wait_for 30 grep -q "Contacted time server $OURS_ADDR" "$LOGS/$cell.log"; then
        # "  offset       : +0.000 sec" (printed to the millisecond)
        offset=$(sed -n 's/^ *offset *: \([-+0-9.]*\) sec.*/\1/p' "$LOGS/$cell.log" | tail -n 1)
        stratum=$(sed -n 's/^ *stratum *: \([0-9]*\).*/\1/p' "$LOGS/$cell.log" | tail -n 1)
        [ "$stratum" = 1 ] && status=0
    fi
    # "~": printed to the millisecond only.
    row "$cell" systemd-timesyncd "$TIMESYNCD_VERSION" "client of our server" \
        "debug log: response accepted (stratum ${stratum:-?}), 'Contacted time server'" \
        "${offset:+~$offset}" "$(verdict "$offset" "$status")"
    end_cell "$cell"
}

# busybox ntpd: client (-n -q -w -p) and server (-l). Debian's busybox
# packages lack the applet; BUSYBOX is then the one built from Debian's
# busybox source package with it (build_busybox_ntpd).
cell_busybox() {
    local cell=busybox p=${NS_PREFIX}pbusybox offset="" status=1 line
    if [ -z "$BUSYBOX" ]; then
        local why="Debian's busybox binaries lack the ntpd applet and building it from the source package failed"
        row "$cell" "busybox ntpd" "" "client of our server" "ntpd -n -q -w -p" "" FAIL "$why"
        row "$cell" "busybox ntpd" "" "serves our sntp" "ntpd -n -l" "" FAIL "$why"
        return 0
    fi
    start_serve "$cell" 60 || return 1
    # -w: query only, never set the clock (so it never quits: the timeout
    # ends it); -d logs each reply with its offset.
    timeout 10 ip netns exec "$p" setpriv --bounding-set -sys_time --inh-caps -sys_time -- \
        "$BUSYBOX" ntpd -n -q -w -d -p "$OURS_ADDR" >"$LOGS/$cell-client.log" 2>&1 || true
    # "ntpd: reply from 10.123.0.1: offset:+0.000021 delay:0.000080
    # status:0x24 strat:1 refid:0x4c434f4c rootdelay:0.000000 reach:0x03"
    # (It also logs replies it ignores, "delay ... is too high".)
    line=$(grep "reply from $OURS_ADDR: offset:" "$LOGS/$cell-client.log" | tail -n 1 || true)
    offset=$(sed -n 's/.* offset:\([-+0-9.]*\) .*/\1/p' <<<"$line")
    grep -q " strat:1 " <<<"$line" && status=0
    row "$cell" "busybox ntpd" "$BUSYBOX_LABEL" "client of our server" \
        "ntpd -n -q -w -p: replies read, strat 1, reach $(sed -n 's/.* reach:\(0x[0-9a-f]*\).*/\1/p' <<<"$line")" \
        "$offset" "$(verdict "$offset" "$status")"
    # With -l and no peer it serves its own clock at stratum 1.
    no_clock "$p" "$BUSYBOX" ntpd -n -l >"$LOGS/$cell-server.log" 2>&1 &
    wait_for 10 no_clock "$p" timeout 5 "$SNTP" --timeout 1 127.0.0.1:123 >/dev/null 2>&1 || true
    client_rows "$cell" "busybox ntpd" "$BUSYBOX_LABEL" 1
    end_cell "$cell"
}

CELLS=(openntpd ntpsec ntpsec_peer chrony chrony_peer timesyncd ntpdig w32time busybox)
step "running ${#CELLS[@]} cells in parallel"
for cell in "${CELLS[@]}"; do
    make_pair "${cell//_/}"
done
for cell in "${CELLS[@]}"; do
    (
        if ! "cell_$cell" >"$LOGS/${cell//_/}-cell.log" 2>&1; then
            row "${cell//_/}" "$cell" "" "" "the cell could not start (see logs)" "" FAIL
        fi
    ) &
    cell_pids+=($!)
done
for pid in "${cell_pids[@]}"; do
    wait "$pid" || true
done
cell_pids=()
for cell in "${CELLS[@]}"; do
    cat "$LOGS/${cell//_/}-cell.log"
done

# --- the table ------------------------------------------------------------------

elapsed=$(($(date +%s) - started))
status=0
python3 - "$RESULTS" "$elapsed" "${CELLS[@]//_/}" <<'EOF' || status=$?
import sys
results, elapsed, cells = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = []
for cell in cells:
    try:
        with open(f"{results}/rows/{cell}.tsv") as f:
            rows += [line.rstrip("\n").split("\t") for line in f]
    except FileNotFoundError:
        rows.append([cell, "", "", "no result", "", "FAIL", "the cell wrote nothing"])

def offset(text):
    if not text:
        return "-"
    if text.startswith("~"):
        # The peer prints it to the millisecond only (systemd-timesyncd).
        return f"{float(text[1:]) * 1e3:+.0f} ms (printed to 1 ms)"
    return f"{float(text) * 1e6:+.1f} µs"

out = ["| Peer | Version | Direction | What was checked | Offset | Result |",
       "|---|---|---|---|---|---|"]
for peer, version, direction, checked, off, result, note in rows:
    verdict = {"ok": "pass", "FAIL": "**FAIL**", "n/a": "not run"}.get(result, result)
    if note:
        verdict += f" ({note})"
    out.append(f"| {peer} | {version} | {direction} | {checked} | {offset(off)} | {verdict} |")
failed = sum(1 for r in rows if r[5] == "FAIL")
out.append("")
out.append(f"{len(rows)} checks, {failed} failed; matrix wall time {elapsed} s "
           "(offsets over a veth pair between two network namespaces of one host).")
with open(f"{results}/table.md", "w") as f:
    f.write("\n".join(out) + "\n")
sys.exit(1 if failed else 0)
EOF
cat "$RESULTS/table.md"

if [ "$README_UPDATE" = 1 ]; then
    python3 - "$RESULTS/table.md" README.md <<'EOF'
import sys
table, readme = open(sys.argv[1]).read(), sys.argv[2]
text = open(readme).read()
begin, end = "<!-- interop-matrix:begin -->", "<!-- interop-matrix:end -->"
head, _, rest = text.partition(begin)
_, _, tail = rest.partition(end)
if not rest:
    sys.exit("README.md has no interop-matrix markers")
open(readme, "w").write(head + begin + "\n" + table + end + tail)
EOF
    echo "$INTEROP_NAME: README.md table updated"
fi

if [ "$status" != 0 ]; then
    echo "$INTEROP_NAME: some cells failed (logs in $LOGS)"
    exit 1
fi
step "interop matrix passed in ${elapsed} s"
