#!/bin/sh
# Entry point of the runtime image. Before it starts the daemon it installs the qemu hook into the
# host's hook directory, mounted at /etc/libvirt/hooks/qemu.d: libvirtd runs on the host and finds
# its hooks there. The hook is a copy, not a link as in the Debian package, because the host does
# not see this image's files; it needs only sh and dbus-send (dbus-bin) on the host.
# --version and --help only print; they install nothing.
set -eu
lib=/usr/lib/virt-lvmlockd
hooks=${VIRT_LVMLOCKD_HOOK_DIR:-/etc/libvirt/hooks/qemu.d}

case ${1:-} in
  --version | --help | -h) exec node "$lib/dist/src/main.js" "$@" ;;
esac

if [ -d "$hooks" ]; then
  # Written under a temporary name without the execute bit and renamed into place, so that
  # libvirtd never runs a half-written hook.
  tmp=$hooks/.virt-lvmlockd.new
  (umask 077 && cat "$lib/hooks/qemu" > "$tmp")
  chmod 755 "$tmp"
  mv -f "$tmp" "$hooks/virt-lvmlockd"
  echo "virt-lvmlockd: installed the qemu hook as $hooks/virt-lvmlockd" >&2
else
  echo "virt-lvmlockd: $hooks is not mounted, so the qemu hook is not installed; copy $lib/hooks/qemu to the host's /etc/libvirt/hooks/qemu.d/virt-lvmlockd" >&2
fi

# The options of the systemd unit (systemd/virt-lvmlockd.service).
exec node --max-semi-space-size=1 "$lib/dist/src/main.js" "$@"
