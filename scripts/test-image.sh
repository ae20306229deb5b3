#!/bin/bash
# Builds the runtime image (Dockerfile, --target runtime) with podman on a Debian 12 base image
# made locally by mmdebstrap, and smoke-tests it: --version, a start against a missing bus (the
# clear error, exit 1) that installs the qemu hook into a mounted hook directory, and the LVM
# tools the daemon runs.
#   bash scripts/test-image.sh [--fresh-base]
# --fresh-base remakes localhost/debian:bookworm even if it exists (it is reused otherwise).
# Needs root (mmdebstrap, and podman without user namespaces); podman, mmdebstrap and runc are
# installed with apt-get when missing. Where podman cannot run containers here the checks are
# skipped, loudly, with podman's own reason. Fallbacks tried before giving up: runc when crun
# refuses the cgroup layout, explicit rlimits when the default ones cannot be set, the vfs storage
# driver when overlay cannot be mounted. Ends with "image: N passed, N failed, N skipped"; exit
# status 1 if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

BASE=localhost/debian:bookworm
IMAGE=localhost/virt-lvmlockd:runtime
fresh_base=0
for arg in "$@"; do
  case $arg in
    --fresh-base) fresh_base=1 ;;
    *) echo "test-image.sh: unknown argument $arg (usage: test-image.sh [--fresh-base])" >&2; exit 2 ;;
  esac
done

passed=0 failed=0 skipped=0
results=()
pass() { passed=$((passed + 1)); results+=("passed  $1"); echo "=== $1: passed"; }
fail() { failed=$((failed + 1)); results+=("FAILED  $1"); echo "=== $1: FAILED${2:+ ($2)}"; }
skip() { skipped=$((skipped + 1)); results+=("SKIPPED $1"); echo "=== $1: SKIPPED: $2"; echo "!!! $1 was NOT tested: $2" >&2; }
started=$(date +%s)
finish() {
  printf '%s\n' "${results[@]}"
  echo "image: $passed passed, $failed failed, $skipped skipped (in $(( $(date +%s) - started ))s)"
  [ "$failed" -eq 0 ] && exit 0
  exit 1
}
skip_all() {
  local why=$1
  for check in "build the runtime image" "--version" "start against a missing bus" \
      "the start installed the qemu hook into the mounted hook directory" "LVM tools in the image"; do
    skip "$check" "$why"
  done
  finish
}
now() { date +%s; }
# One bounded step: a dead mirror or a hung container must not take CI's whole time.
bounded() { local limit=$1; shift; timeout --kill-after=30s "$limit" "$@"; }
export DEBIAN_FRONTEND=noninteractive

# --- tools ---------------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || skip_all "not root: this check runs podman and mmdebstrap as root and does not set up user namespaces"
work=$ROOT/.cache/test-image
rm -rf "$work" && mkdir -p "$work"
missing=()
for tool in podman mmdebstrap runc; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "=== installing ${missing[*]}"
  if ! { bounded 300s apt-get update -qq && bounded 600s apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
    command -v podman >/dev/null && command -v mmdebstrap >/dev/null ||
      skip_all "podman or mmdebstrap is missing and apt-get cannot install ${missing[*]}"
  fi
fi

# --- how podman can run here ---------------------------------------------------------------
# global: options of podman itself; limits: options of run and build.
global=() limits=()
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
# Runs a container from $1 with the options found so far; its stderr lands in $work/probe.err.
probe() { bounded 120s podman "${global[@]}" run --rm --network none "${limits[@]}" "$1" true 2> "$work/probe.err"; }
# Reads why the last probe failed and adds the matching fallback; fails when none applies.
fallback() {
  local err; err=$(cat "$work/probe.err")
  if [[ $err == *"cgroups in hybrid mode not supported"* ]] && [[ " ${global[*]} " != *" --runtime "* ]] && command -v runc >/dev/null; then
    echo "podman: crun refuses this host's cgroup layout (v1 with a v2 hierarchy holding controllers); using runc"
    global+=(--runtime runc)
  elif [[ $err == *rlimit* ]] && [ ${#limits[@]} -eq 0 ]; then
    # podman asks for more open files and processes than this process's hard limits allow and
    # raising them needs CAP_SYS_RESOURCE; the daemon needs far fewer.
    echo "podman: cannot raise the default rlimits here; using nofile=$nofile, nproc=4096"
    limits+=(--ulimit "nofile=$nofile:$nofile" --ulimit nproc=4096:4096)
  elif [[ $err == *overlay* ]] && [[ " ${global[*]} " != *" vfs "* ]]; then
    echo "podman: overlay storage does not work here; using the vfs driver in $work/storage"
    global+=(--storage-driver vfs --root "$ROOT/.cache/test-image-storage/root" --runroot "$ROOT/.cache/test-image-storage/run")
    base_exists=0
  elif [[ $err == *cgroup* ]] && [[ " ${global[*]} " != *" --cgroup-manager "* ]]; then
    echo "podman: the cgroup manager fails; using cgroupfs"
    global+=(--cgroup-manager cgroupfs)
  else
    return 1
  fi
}

if ! info_err=$(bounded 60s podman info 2>&1 >/dev/null); then
  skip_all "podman info fails: $(echo "$info_err" | tail -n 1)"
fi

# --- the base image -------------------------------------------------------------------------
make_base() {
  echo "=== making $BASE with mmdebstrap"
  local t; t=$(now)
  if bounded 900s mmdebstrap --variant=minbase --aptopt='Acquire::Retries "3"' bookworm - 2> "$work/mmdebstrap.log" |
     bounded 300s podman "${global[@]}" import - "$BASE" > /dev/null 2>> "$work/mmdebstrap.log"; then
    pass "make $BASE in $(( $(now) - t ))s"
  else
    tail -n 20 "$work/mmdebstrap.log"
    if ! unshare --mount true 2>/dev/null; then
      skip_all "no permission to mount (unshare --mount failed): mmdebstrap cannot make $BASE"
    fi
    fail "make $BASE" "the log is $work/mmdebstrap.log"
    finish
  fi
}
base_exists=1
[ "$fresh_base" = 1 ] && base_exists=0
podman "${global[@]}" image exists "$BASE" || base_exists=0
[ "$base_exists" = 1 ] && echo "=== reusing $BASE (--fresh-base remakes it)"
[ "$base_exists" = 1 ] || make_base

t=$(now)
for _ in 1 2 3 4 5; do
  probe "$BASE" && break
  fallback || skip_all "podman cannot run a container here: $(tail -n 1 "$work/probe.err")"
  [ "$base_exists" = 1 ] || { make_base; base_exists=1; }
done
probe "$BASE" || skip_all "podman cannot run a container here: $(tail -n 1 "$work/probe.err")"
echo "podman runs containers with: podman ${global[*]} run ${limits[*]} (found in $(( $(now) - t ))s)"

# --- the runtime image ----------------------------------------------------------------------
echo "=== building $IMAGE"
t=$(now)
# The host's network, so that apt and npm reach their registries without a bridge network; and
# the extra CA the host's Node.js trusts (a TLS-intercepting proxy's), for npm in the build.
build_ca=()
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
  build_ca=(-v "$NODE_EXTRA_CA_CERTS:/run/extra-ca.crt:ro" --build-arg EXTRA_CA_CERTS=/run/extra-ca.crt)
fi
if bounded 1800s podman "${global[@]}" build "${limits[@]}" "${build_ca[@]}" --network host --target runtime \
     --build-arg "BASE_IMAGE=$BASE" -t "$IMAGE" . > "$work/build.log" 2>&1; then
  pass "build the runtime image in $(( $(now) - t ))s ($(podman "${global[@]}" image inspect --format '{{.Size}}' "$IMAGE" | awk '{ printf "%d MB", $1 / 1e6 }'))"
else
  tail -n 30 "$work/build.log"
  fail "build the runtime image" "the log is $work/build.log"
  finish
fi

# Runs the image, bounded, without a network; the output (both streams) goes to $work/out.
run() { bounded 120s podman "${global[@]}" run --rm --network none "${limits[@]}" "$@" > "$work/out" 2>&1; }

version=$(node -p 'require("./package.json").version' 2>/dev/null || sed -n 's/^  "version": "\(.*\)",$/\1/p' package.json)
t=$(now)
run "$IMAGE" --version; rc=$?
if [ "$rc" -eq 0 ] && [ "$(cat "$work/out")" = "$version" ]; then
  pass "--version prints $version in $(( $(now) - t ))s"
else
  fail "--version" "exit $rc, output: $(head -c 500 "$work/out")"
fi

# The shipped configuration with only the bus changed: the daemon loads it and stops at the bus.
mkdir -p "$work/etc" "$work/hooks"
sed 's|^  address: system$|  address: unix:path=/nonexistent/bus|' config/virt-lvmlockd.yaml > "$work/etc/config.yaml"
grep -q 'unix:path=/nonexistent/bus' "$work/etc/config.yaml" || { fail "start against a missing bus" "config/virt-lvmlockd.yaml has no 'address: system' line to replace"; finish; }
t=$(now)
run -v "$work/etc:/etc/virt-lvmlockd:ro" -v "$work/hooks:/etc/libvirt/hooks/qemu.d" "$IMAGE"; rc=$?
want='startup failed: cannot connect to D-Bus at unix:path=/nonexistent/bus'
if [ "$rc" -eq 1 ] && grep -qF "$want" "$work/out"; then
  pass "start against a missing bus: exit 1, '$want', in $(( $(now) - t ))s"
else
  fail "start against a missing bus" "exit $rc (want 1), output: $(tail -c 800 "$work/out")"
fi
if [ -x "$work/hooks/virt-lvmlockd" ] && cmp -s "$work/hooks/virt-lvmlockd" src/hook/qemu &&
   [ -z "$(find "$work/hooks" -name '.*' -type f)" ]; then
  pass "the start installed the qemu hook into the mounted hook directory"
else
  fail "the start installed the qemu hook into the mounted hook directory" "$(ls -la "$work/hooks")"
fi

run --entrypoint sh "$IMAGE" -c 'lvm version >/dev/null && command -v lvmlockctl'; rc=$?
if [ "$rc" -eq 0 ]; then
  pass "LVM tools in the image (lvm, $(tail -n 1 "$work/out"))"
else
  fail "LVM tools in the image" "exit $rc, output: $(tail -c 500 "$work/out")"
fi
finish
