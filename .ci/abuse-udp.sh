#!/usr/bin/env bash
# Abuse test (issue 21): a UDP flood of MAC-signed and NTS requests from a
# denied address (127.0.0.2) and from an over-limit one (127.0.0.3)
# against our server (`ntp-daemon --serve --local 1` with keys, NTS, an
# access list and rate limits), while a good client (our `sntp`, keyed, from
# 127.0.0.1) keeps asking. Passes when the good client gets at least 95 %
# of its answers and the server spent no cryptography on the flood: its
# `crypto_checks` counter (MAC checks with a held key, NTS cookie
# openings) stays within the good client's requests and the limited
# address's burst.
#
# Everything stays on 127.0.0.0/8; the server only reads the system clock
# (its clock is the model clock). SERVE_THREADS (default 0: from the loop)
# picks --serve-threads.
# Prints the figures; exit 1 on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${NTP_ABUSE_PORT:-11133}"
KE_PORT="${NTP_ABUSE_KE_PORT:-11134}"
FLOOD_SECONDS=12
# Requests per second from each of the four flooders: 80 000 in all, about
# what one server thread takes on a loaded 2-core machine (an unbounded
# flood only overflows the socket's queue, which tests the kernel).
FLOOD_RATE=20000
GOOD_TRIES=40
SERVE_THREADS="${NTP_ABUSE_SERVE_THREADS:-0}"

INTEROP_NAME=abuse-udp
# shellcheck source=interop-lib.sh
source .ci/interop-lib.sh

install_missing openssl:openssl

step "building ntp-daemon and sntp"
cargo build --release --locked -p ntp-daemon --bin ntp-daemon
cargo build --release --locked -p ntp-client --example sntp
DAEMON=target/release/ntp-daemon
SNTP=target/release/examples/sntp

work=$(mktemp -d)
serve_pid=""
flood_pids=()
cleanup() {
    local pid
    for pid in "${flood_pids[@]}" "$serve_pid"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# Key 1: AES-128-CMAC, in chrony's format.
secret=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
echo "1 AES128 HEX:$secret" >"$work/keys"
make_cert server "$work"

step "ntp-daemon --serve: 127.0.0.2 denied, others limited (2 requests, then one per 16 s), 127.0.0.1 allowed"
start_serve_on "127.0.0.1:$PORT" 60 "$work/serve.log" --keys "$work/keys" \
    --default-action limited --rate 4,2,2 \
    --rule 127.0.0.2/32=deny --rule 127.0.0.1/32=allow \
    --nts-ke-listen "127.0.0.1:$KE_PORT" \
    --nts-cert "$work/server-cert.pem" --nts-key "$work/server-key.pem" \
    --serve-threads "$SERVE_THREADS"
wait_for_log "$serve_pid" "$work/serve.log" 'NTS-KE listening on' "NTS-KE"

# flood FROM KIND: FLOOD_RATE requests a second for FLOOD_SECONDS from
# FROM: MAC-signed ones (key 1, a digest that does not verify) or NTS ones
# (unique identifier, a random 104-octet cookie, an authenticator).
flood() {
    python3 - "$1" "$2" "$PORT" "$FLOOD_SECONDS" "$FLOOD_RATE" <<'PY'
import os, socket, struct, sys, time
src, kind, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
seconds, rate = float(sys.argv[4]), float(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, 0))
def ef(kind, body):
    body += b"\0" * (-len(body) % 4)
    return struct.pack(">HH", kind, 4 + len(body)) + body
def request():
    header = bytes([0x23]) + b"\0" * 39 + os.urandom(8)
    if kind == "mac":
        return header + struct.pack(">I", 1) + os.urandom(16)
    nonce, ciphertext = os.urandom(16), os.urandom(16)
    auth = struct.pack(">HH", len(nonce), len(ciphertext)) + nonce + ciphertext
    return header + ef(0x0104, os.urandom(32)) + ef(0x0204, os.urandom(104)) + ef(0x0404, auth)
packets = [request() for _ in range(64)]
start = time.monotonic()
sent, end = 0, start + seconds
while (now := time.monotonic()) < end:
    if sent > (now - start) * rate:
        time.sleep(0.001)
        continue
    for p in packets:
        try:
            s.sendto(p, ("127.0.0.1", port))
            sent += 1
        except OSError:
            pass
print(f"{src} {kind}: {sent} requests in {seconds:.0f} s")
PY
}

step "flooding for $FLOOD_SECONDS s from 127.0.0.2 (denied) and 127.0.0.3 (over the limit)"
for from in 127.0.0.2 127.0.0.3; do
    for kind in mac nts; do
        flood "$from" "$kind" >"$work/flood-$from-$kind.log" 2>&1 &
        flood_pids+=($!)
    done
done
sleep 1
good=0
for _ in $(seq "$GOOD_TRIES"); do
    if timeout 5 "$SNTP" --timeout 1 --keys "$work/keys" --key 1 "127.0.0.1:$PORT" >/dev/null 2>&1; then
        good=$((good + 1))
    fi
    sleep 0.2
done
for pid in "${flood_pids[@]}"; do
    wait "$pid" || true
done
flood_pids=()
cat "$work"/flood-*.log
stop_serve "$work/serve.log" >/dev/null
counters=$(served_counters "$work/serve.log")
echo "server counters: $counters"
crypto=$(sed -n 's/.*crypto_checks=\([0-9]*\).*/\1/p' <<<"$counters")
echo "good client: $good of $GOOD_TRIES keyed requests answered and verified"
echo "cryptography spent: $crypto checks (the good client's $GOOD_TRIES, plus at most the limited address's burst)"
if [ "$good" -lt $((GOOD_TRIES * 95 / 100)) ]; then
    echo "abuse-udp: the good client was answered $good times in $GOOD_TRIES"
    exit 1
fi
if [ -z "$crypto" ] || [ "$crypto" -gt $((GOOD_TRIES + 8)) ]; then
    echo "abuse-udp: the flood cost the server cryptography ($crypto checks)"
    exit 1
fi
step "abuse-udp passed"
