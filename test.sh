#!/usr/bin/env bash
# The whole test suite, as CI runs it: ./test.sh (as root).
#
# 1. cargo test: unit tests and the integration tests under tests/. Many of
#    those run convoy against real SSH hosts that tests/fleet/fleet.sh creates
#    on this machine (network namespaces + sshd), which needs root and
#    openssh-server, sudo, iproute2 (see .ci/run for the packages).
# 2. the release binary for x86_64-unknown-linux-musl: must be fully static
#    and run (`convoy --version`).
#
# TEST_THREADS (default 4) limits parallel tests per test binary: each fleet
# test starts several sshds, and CI machines have 2 cores.
set -euo pipefail
cd "$(dirname "$0")"

section() { printf '\n==== %s ====\n' "$*"; }
die() {
    echo "test.sh: $*" >&2
    exit 1
}

if [[ $EUID -ne 0 ]]; then
    echo "test.sh: warning: not root: the fleet tests (real SSH hosts) will fail" >&2
fi

section "cargo test (--test-threads=${TEST_THREADS:-4})"
cargo test --no-fail-fast -- --test-threads="${TEST_THREADS:-4}"

TARGET=x86_64-unknown-linux-musl
BIN=${CARGO_TARGET_DIR:-target}/$TARGET/release/convoy

section "static release build ($TARGET)"
cargo build --release --target "$TARGET"
[[ -x $BIN ]] || die "$BIN was not built"

section "$BIN is static"
# `file` may be missing; readelf (binutils, installed with gcc) is precise: a
# static (or static-pie) binary needs no shared library. ldd as a fallback.
if command -v readelf >/dev/null 2>&1; then
    needed=$(readelf -d "$BIN" | grep '(NEEDED)' || true)
    [[ -z $needed ]] || die "$BIN needs shared libraries:
$needed"
    readelf -l "$BIN" | grep -q 'Requesting program interpreter' &&
        die "$BIN has a program interpreter (dynamically linked)"
else
    out=$(ldd "$BIN" 2>&1 || true)
    grep -qE 'not a dynamic executable|statically linked' <<<"$out" ||
        die "$BIN is not static: $out"
fi
echo "ok: no shared libraries, no interpreter"

section "$BIN --version"
"$BIN" --version || die "$BIN --version failed"

section "all tests passed"
