/**
 * The text files of the guest image. Their content is part of the image's cache key, so changing
 * anything here rebuilds the image.
 *
 * Kernel command line read by the init: testbed.name=A testbed.hostid=1 [testbed.io_timeout=N]
 * Command channel (a 9p share, tag "channel", mounted on /channel): the host writes
 * cmd/NNNNNN.sh (under a temporary name first); the guest runs it with sh, writes NNNNNN.out and
 * NNNNNN.err, removes the script and writes NNNNNN.rc last: "rc start end" (guest uptime, s).
 * One command at a time, in name order.
 */

/** Modules loaded at boot, in this order (modprobe pulls their dependencies). */
export const GUEST_MODULES = ['virtio_pci', 'virtio_blk', '9pnet_virtio', '9p', 'dm-mod', 'crc32c_generic', 'dm-thin-pool'];

/** Host binaries copied into the guest, with their libraries. */
export const GUEST_BINARIES = ['lvm', 'lvmlockd', 'lvmlockctl', 'sanlock', 'dmsetup'];

/** lvm command names that are links to the lvm binary. */
export const LVM_COMMAND_LINKS = ['pvcreate', 'pvs', 'vgcreate', 'vgchange', 'vgs', 'vgremove', 'lvcreate', 'lvchange', 'lvs', 'lvremove', 'lvmconfig'];

/**
 * The guest has no udev: lvm creates the device nodes itself. Only virtio disks are scanned. No
 * metadata backups (they would only print "NOT backed up" warnings on a throw-away disk otherwise).
 * thin_check is not in the image (no thin-provisioning-tools on the host), so pool activation skips it.
 */
export const LVM_CONF = `global {
    use_lvmlockd = 1
    event_activation = 0
    thin_check_executable = ""
}
devices {
    obtain_device_list_from_udev = 0
    external_device_info_source = "none"
    use_devicesfile = 0
    filter = [ "a|^/dev/vd|", "r|.*|" ]
}
activation {
    udev_sync = 0
    udev_rules = 0
    verify_udev_operations = 0
    monitoring = 0
}
backup {
    backup = 0
    archive = 0
}
`;

export const PASSWD = `root:x:0:0:root:/root:/bin/sh
sanlock:x:179:179:sanlock:/run/sanlock:/bin/false
`;

export const GROUP = `root:x:0:
disk:x:6:
sanlock:x:179:root
`;

/** PID 1: mounts, modules, 9p channel, sanlock (no watchdog), lvmlockd, then the command loop. */
export const GUEST_INIT = `#!/bin/sh
export PATH=/sbin:/bin
# The same environment the daemon gives lvm: English texts, no fd-leak warnings.
export LC_ALL=C LANG=C LVM_SUPPRESS_FD_WARNINGS=1
mount -t proc proc /proc
read T_INIT rest < /proc/uptime
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs run /run
mkdir -p /run/lock/lvm /run/lvm /run/sanlock /run/testbed/open /dev/shm /tmp /var/log /channel
[ -e /var/run ] || ln -s /run /var/run

for m in ${GUEST_MODULES.join(' ')}; do
    modprobe "$m" || echo "testbed-init: modprobe $m failed" > /dev/console
done

NAME=X HOSTID=0 IOTO=
for a in $(cat /proc/cmdline); do
    case "$a" in
        testbed.name=*) NAME=\${a#testbed.name=} ;;
        testbed.hostid=*) HOSTID=\${a#testbed.hostid=} ;;
        testbed.io_timeout=*) IOTO=\${a#testbed.io_timeout=} ;;
    esac
done
hostname "host$NAME"

if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 channel /channel; then
    echo "testbed-init: cannot mount the 9p command channel" > /dev/console
    poweroff -f
fi
C=/channel
log() { read now rest < /proc/uptime; echo "[$now] $*" > /dev/console; }
log "init at uptime $T_INIT: name=$NAME host_id=$HOSTID io_timeout=\${IOTO:-default}"

i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
[ -b /dev/vda ] || log "no /dev/vda"

printf 'local {\\n    host_id = %s\\n}\\n' "$HOSTID" > /etc/lvm/lvmlocal.conf

# -w 0: no watchdog (no wdmd here), so nothing fences this host; root so it can open dm nodes.
sanlock daemon -w 0 -U root -G root > /run/testbed/sanlock.out 2>&1 || log "sanlock daemon failed"
i=0
while [ ! -S /run/sanlock/sanlock.sock ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
lvmlockd \${IOTO:+-o $IOTO} > /run/testbed/lvmlockd.out 2>&1 || log "lvmlockd failed"
i=0
while [ ! -S /run/lvm/lvmlockd.socket ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done

mkdir -p $C/cmd
read T_READY rest < /proc/uptime
echo "$T_INIT $T_READY" > $C/ready.tmp && mv $C/ready.tmp $C/ready
log "READY"

# The loop's pause is a read with a timeout on a FIFO nobody writes: no process per tick.
mkfifo /run/testbed/tick && exec 3<>/run/testbed/tick
while :; do
    for f in $C/cmd/*.sh; do
        [ -e "$f" ] || continue
        b=\${f%.sh}
        read t0 rest < /proc/uptime
        sh "$f" > "$b.out" 2> "$b.err" < /dev/null 3<&-
        rc=$?
        read t1 rest < /proc/uptime
        rm -f "$f"
        echo "$rc $t0 $t1" > "$b.tmp" && mv "$b.tmp" "$b.rc"
    done
    read -t 0.02 -u 3 tick
done
`;

/**
 * testbed-open DEVICE KEY: a process keeps DEVICE open (as QEMU keeps its disks) until
 * testbed-close KEY. Returns once the descriptor is open.
 */
export const OPEN_HELPER = `#!/bin/sh
dev=$1 key=$2 pidfile=/run/testbed/open/$2
[ -n "$key" ] || { echo "usage: testbed-open DEVICE KEY" >&2; exit 2; }
[ -b "$dev" ] || { echo "testbed-open: $dev is not a block device here" >&2; exit 1; }
[ -e "$pidfile" ] && { echo "testbed-open: $key is already held open" >&2; exit 1; }
want=$(readlink -f "$dev")
sleep 2147483647 < "$dev" > /dev/null 2>&1 &
pid=$!
i=0
while [ "$(readlink /proc/$pid/fd/0 2>/dev/null)" != "$want" ]; do
    [ -e /proc/$pid ] || { echo "testbed-open: the holder of $dev exited" >&2; exit 1; }
    i=$((i+1)); [ $i -lt 200 ] || { echo "testbed-open: $dev not open after 10 s" >&2; kill $pid; exit 1; }
    sleep 0.05
done
echo $pid > "$pidfile"
`;

/** testbed-close KEY: ends the holder and waits until its descriptor is closed. "--all" ends every holder. */
export const CLOSE_HELPER = `#!/bin/sh
close_one() {
    pidfile=/run/testbed/open/$1
    [ -e "$pidfile" ] || { echo "testbed-close: $1 is not held open" >&2; return 1; }
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null
    i=0
    while [ -e /proc/$pid/fd/0 ]; do
        i=$((i+1)); [ $i -lt 200 ] || { echo "testbed-close: holder $pid of $1 still open after 10 s" >&2; return 1; }
        sleep 0.05
    done
    rm -f "$pidfile"
}
if [ "$1" = --all ]; then
    rc=0
    for p in /run/testbed/open/*; do [ -e "$p" ] || continue; close_one "\${p##*/}" || rc=1; done
    exit $rc
fi
close_one "$1"
`;

/** Everything that shapes the image besides the packages: part of the cache key. */
export function guestFilesFingerprint(): string {
  return JSON.stringify([GUEST_MODULES, GUEST_BINARIES, LVM_COMMAND_LINKS, LVM_CONF, PASSWD, GROUP, GUEST_INIT, OPEN_HELPER, CLOSE_HELPER]);
}
