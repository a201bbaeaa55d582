#!/usr/bin/env bash
# Accuracy of ntp-daemon against chronyd under clknetsim (benches/accuracy):
# the seven scenarios in benches/accuracy/scenarios with seeds 1, 2 and 3
# and the ports of chrony's simulation tests (scenarios/chrony) with seed 1
# (--full: seeds 1, 2 and 3 for those too), both clients fed the same noise
# files. Prints the table with each scenario's verdict and fails when a run
# breaks (chronyd or clknetsim failed, short logs, our daemon exited early
# outside a known failure) or when a threshold or chrony check fails or
# cannot be judged (--check, on by default: issue 10's limits and chrony's
# checks gate CI; chronyd must pass every ported check, ours' failures
# marked known_failure do not count). ACCURACY_CHECK=0 runs without
# --check (to look at a failing change).
#
# Needs ../shared/clknetsim (pristine upstream source, GPL-2.0) beside the
# repository; it is built in a temporary copy with the small patches that
# let Rust programs open sockets and devices, never in that folder. Runs as root on a
# fresh Debian machine with Rust, gcc/g++ and make; installs chrony with
# apt when chronyd is missing.
#
# Extra arguments go to the runner (after the defaults, so they win), e.g.
# to refresh the committed results or to run a subset:
#   bash .ci/accuracy.sh --publish benches/accuracy/results
#   bash .ci/accuracy.sh --seeds 1 benches/accuracy/scenarios/a.toml
#   bash .ci/accuracy.sh --full
# ACCURACY_OUT sets the output folder (default target/accuracy).
set -euo pipefail
cd "$(dirname "$0")/.."

CLKNETSIM_SRC="${CLKNETSIM_SRC:-../shared/clknetsim}"
OUT="${ACCURACY_OUT:-target/accuracy}"
TARGET="${CARGO_TARGET_DIR:-target}"

INTEROP_NAME=accuracy
# shellcheck source=interop-lib.sh
source .ci/interop-lib.sh

install_missing chronyd:chrony

if [ ! -f "$CLKNETSIM_SRC/client.c" ]; then
    echo "accuracy: no clknetsim source in $CLKNETSIM_SRC"
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step "building clknetsim in a patched copy of $CLKNETSIM_SRC"
cp -r "$CLKNETSIM_SRC" "$work/clknetsim"
# std passes SOCK_CLOEXEC in socket()'s type; the wrapper accepts only the
# plain types, so clear the flags first.
sed -i '/^int socket(int domain, int type, int protocol) {$/,/^\tint s;$/ s/^\tint s;$/&\n\ttype \&= ~(SOCK_CLOEXEC | SOCK_NONBLOCK);/' \
    "$work/clknetsim/client.c"
if ! grep -q '^	type &= ~(SOCK_CLOEXEC | SOCK_NONBLOCK);$' "$work/clknetsim/client.c"; then
    echo "accuracy: could not patch clknetsim's socket() wrapper"
    exit 1
fi
# std opens files with open64(), which the wrapper does not catch: route it
# to the wrapper's open(), which simulates /dev/ptp0 and /dev/pps0.
cat >>"$work/clknetsim/client.c" <<'EOF'

int open64(const char *pathname, int flags, ...) {
	mode_t mode = 0;
	va_list ap;

	if (flags & O_CREAT || (flags & O_TMPFILE) == O_TMPFILE) {
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
		return open(pathname, flags, mode);
	}
	return open(pathname, flags);
}
EOF
if ! make -C "$work/clknetsim" -j2 >"$work/make.log" 2>&1; then
    tail -n 40 "$work/make.log"
    echo "accuracy: building clknetsim failed"
    exit 1
fi

step "building ntp-daemon and the runner"
cargo build --release --locked -p ntp-daemon -p ntp-accuracy

check=(--check)
if [ "${ACCURACY_CHECK:-1}" = 0 ]; then
    check=()
fi

# --full is this script's: every ported chrony case on seeds 1-3 too.
ported_seeds=1
args=()
for arg in "$@"; do
    if [ "$arg" = --full ]; then
        ported_seeds=1,2,3
    else
        args+=("$arg")
    fi
done

step "running the scenarios (seeds 1,2,3; ported chrony cases: seeds $ported_seeds)"
started=$SECONDS
"$TARGET/release/accuracy" \
    "${check[@]}" \
    --clknetsim "$work/clknetsim" \
    --daemon "$TARGET/release/ntp-daemon" \
    --scenarios benches/accuracy/scenarios \
    --seeds 1,2,3 \
    --ported-seeds "$ported_seeds" \
    --jobs 2 \
    --out "$OUT" \
    "${args[@]}"
echo "accuracy: the runs took $((SECONDS - started)) s"
echo "accuracy: table in $OUT/table.md, plots in $OUT/*.svg"
