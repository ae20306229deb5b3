#!/bin/bash
# Builds the Debian package, runs lintian on it, and installs it with apt-get into fresh
# Debian 12 (bookworm) and Debian 13 (trixie) systems made by mmdebstrap, where
# test/package/smoke.sh checks it. Downloaded .debs are kept under .cache/package-check/SUITE/
# so that a second run fetches only what changed; every system is built anew.
#   bash scripts/check-package.sh [SUITE...]       (default: bookworm trixie)
# PACKAGE_CHECK_RECOMMENDS=1 installs the Recommends too, as a plain `apt install` does (that
# brings libvirt's own recommendations, QEMU among them: much slower).
# Needs root (apt-get, mmdebstrap, chroot mounts). The chroot stages are skipped, loudly, only
# where mmdebstrap cannot run at all (not root, or no permission to mount). Ends with
# "package: N passed, N failed, N skipped"; exit status 1 if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(bookworm trixie)

passed=0 failed=0 skipped=0
results=()
pass() { passed=$((passed + 1)); results+=("passed  $1"); echo "=== $1: passed"; }
fail() { failed=$((failed + 1)); results+=("FAILED  $1"); echo "=== $1: FAILED${2:+ ($2)}"; }
skip() { skipped=$((skipped + 1)); results+=("SKIPPED $1"); echo "=== $1: SKIPPED: $2"; }
finish() {
  printf '%s\n' "${results[@]}"
  echo "package: $passed passed, $failed failed, $skipped skipped"
  [ "$failed" -eq 0 ] && exit 0
  exit 1
}
now() { date +%s; }
# One bounded step: a dead mirror or a hung install must not take CI's whole time.
bounded() { local limit=$1; shift; timeout --kill-after=30s "$limit" "$@"; }
export DEBIAN_FRONTEND=noninteractive

apt_updated=
apt_install() {
  [ "$(id -u)" -eq 0 ] || return 1
  [ -n "$apt_updated" ] || { bounded 300s apt-get update -qq && apt_updated=1; } || return 1
  bounded 600s apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

echo "=== building the package"
t=$(now)
out=$ROOT/.cache/package-check/out
rm -rf "$out"
if bounded 900s bash scripts/package.sh --out "$out"; then
  deb=$(ls "$out"/virt-lvmlockd_*_all.deb)
  version=$(dpkg-deb -f "$deb" Version)
  pass "build $(basename "$deb") in $(( $(now) - t ))s"
else
  fail "build"
  finish
fi

echo "=== lintian"
t=$(now)
if ! command -v lintian >/dev/null; then
  apt_install lintian || echo "lintian is missing and cannot be installed here (apt-get as root)"
fi
if command -v lintian >/dev/null; then
  # Errors fail the check; warnings and info are shown (packaging/lintian-overrides explains
  # the overridden ones).
  bounded 300s lintian --display-level '>=info' "$deb" 2>&1 | grep -v 'running with root privileges' | tee "$out/lintian.txt"
  if grep -q '^E:' "$out/lintian.txt"; then
    fail "lintian" "errors above"
  else
    pass "lintian, $(grep -c '^W:' "$out/lintian.txt") warnings, in $(( $(now) - t ))s"
  fi
else
  fail "lintian" "not installed"
fi

# Can mmdebstrap run here? It needs root to mount /proc and /dev in the new system.
why_not=
if [ "$(id -u)" -ne 0 ]; then
  why_not="not root: mmdebstrap's root mode needs root, and this check does not set up user namespaces"
elif ! unshare --mount true 2>/dev/null; then
  why_not="no permission to mount (unshare --mount failed): an unprivileged container"
elif ! command -v mmdebstrap >/dev/null && ! apt_install mmdebstrap; then
  why_not="mmdebstrap is missing and apt-get cannot install it"
fi

recommends=--no-install-recommends
[ "${PACKAGE_CHECK_RECOMMENDS:-0}" = 1 ] && recommends=--install-recommends
for suite in "${suites[@]}"; do
  if [ -n "$why_not" ]; then
    skip "install on $suite" "$why_not"
    echo "!!! the package was NOT installed on $suite: $why_not" >&2
    continue
  fi
  echo "=== installing on $suite"
  t=$(now)
  cache=$ROOT/.cache/package-check/$suite/archives
  mkdir -p "$cache"
  log=$out/$suite.log
  # The .debs are synced in before apt runs and out again (with what is no longer in the
  # archive dropped by autoclean) after the checks, even failed ones; the smoke checks write
  # their report outside, and the last hook fails the build on a failed check. The system
  # itself goes to /dev/null.
  bounded 1800s mmdebstrap --variant=apt --skip=essential/unlink --aptopt='Acquire::Retries "3"' \
    --setup-hook="mkdir -p \"\$1/var/cache/apt/archives\"" \
    --setup-hook="sync-in '$cache' /var/cache/apt/archives/" \
    --customize-hook="copy-in '$deb' test/package/smoke.sh /tmp/" \
    --customize-hook="chroot \"\$1\" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive apt-get install -y -q $recommends /tmp/$(basename "$deb")" \
    --customize-hook="chroot \"\$1\" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root sh /tmp/smoke.sh '$version' > '$out/$suite.smoke' 2>&1" \
    --customize-hook="chroot \"\$1\" apt-get autoclean -q >/dev/null; rm -rf '$cache.new'; mkdir -p '$cache.new'" \
    --customize-hook="sync-out /var/cache/apt/archives '$cache.new'" \
    --customize-hook="rm -rf '$cache' && mv '$cache.new' '$cache'" \
    --customize-hook="grep -q '^smoke: [0-9]* passed, 0 failed\$' '$out/$suite.smoke'" \
    "$suite" /dev/null > "$log" 2>&1
  rc=$?
  grep -E '^(#|ok|FAILED|    |smoke:)' "$out/$suite.smoke" 2>/dev/null || true
  if [ "$rc" -eq 0 ]; then
    pass "install on $suite ($(head -n 1 "$out/$suite.smoke" | sed 's/^# //')) in $(( $(now) - t ))s"
  else
    tail -n 30 "$log"
    fail "install on $suite" "exit $rc after $(( $(now) - t ))s; the log is $log"
  fi
done
finish
