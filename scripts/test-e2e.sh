#!/bin/bash
# End-to-end tests: two isolated system-mode libvirtd instances on this machine, live migrations
# between them, the real hook and the daemon under test on each, the LVM simulator as lvmlockd.
#
# As root, installs the Debian packages that are missing (without starting any service), builds,
# and runs test/e2e/ one file at a time. Without root, or where something cannot be installed,
# the tests are skipped and say why.
#
#   bash scripts/test-e2e.sh [node --test options, e.g. --test-name-pattern=abort]
#
# Environment: VLE2E_REQUIRE=1 fails instead of skipping; VLE2E_KEEP=1 keeps each test's state
# directory (logs, sockets) in $TMPDIR; VLE2E_NO_SUBREAPER=1 runs libvirtd without the subreaper.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

# command -> Debian package that provides it
declare -A NEEDED=(
  [ip]=iproute2
  [unshare]=util-linux
  [nsenter]=util-linux
  [mountpoint]=util-linux
  [losetup]=mount
  [hostname]=hostname
  [libvirtd]=libvirt-daemon
  [qemu-system-x86_64]=qemu-system-x86
  [libvirt-dbus]=libvirt-dbus
  [dbus-daemon]=dbus-daemon
  [dbus-send]=dbus-bin
  [virsh]=libvirt-clients
  [openssl]=openssl
  [perl]=perl-base
)

qemu_driver_present() {
  local f
  for f in /usr/lib/libvirt/connection-driver/libvirt_driver_qemu.so /usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so; do
    [ -e "$f" ] && return 0
  done
  return 1
}

missing=()
for cmd in "${!NEEDED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEEDED[$cmd]}")
done
qemu_driver_present || missing+=(libvirt-daemon-driver-qemu)
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
fi

# PIDs of daemons a package could start, so that any the install starts can be told apart.
service_pids() {
  local name
  for name in libvirtd virtqemud virtlogd virtlockd dnsmasq libvirt-dbus; do
    pgrep -x "$name" 2>/dev/null || true
  done | sort
}

created_policy=
cleanup_policy() {
  if [ -n "$created_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup_policy EXIT

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "e2e: installing Debian packages: ${missing[*]}" >&2
    # Keep maintainer scripts from starting services (a system libvirtd, its default network):
    # invoke-rc.d and deb-systemd-invoke both obey policy-rc.d. An existing one is left alone.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\n# e2e test install: start no service\nexit 101\n' > /usr/sbin/policy-rc.d
      chmod 755 /usr/sbin/policy-rc.d
      created_policy=1
    fi
    before=$(service_pids)
    export DEBIAN_FRONTEND=noninteractive
    if apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
      # Should a service have started anyway, stop exactly the processes that appeared with the install.
      for pid in $(comm -13 <(echo "$before") <(service_pids)); do
        echo "e2e: the install started $(cat "/proc/$pid/comm" 2>/dev/null || echo "PID") $pid; stopping it" >&2
        kill "$pid" 2>/dev/null || true
      done
    else
      echo "e2e: could not install ${missing[*]}; the tests that need them will be skipped" >&2
    fi
    cleanup_policy
    created_policy=
  else
    echo "e2e: missing Debian packages: ${missing[*]} (not root: not installing; the tests will be skipped)" >&2
  fi
fi

if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund
fi
# Other parts of the tree may be mid-change: tsc still emits then, and the e2e files are checked
# by the tests themselves; a compile error is shown, not hidden.
if ! npx tsc -p tsconfig.json; then
  echo "e2e: tsc reported errors (above); running the tests with what it emitted" >&2
fi

exec node --test --test-concurrency=1 "$@" dist/test/e2e/
