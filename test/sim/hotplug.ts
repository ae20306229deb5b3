/**
 * Hot-plug and hot-unplug of a disk, as an admin does them with libvirt. libvirt runs no hook for
 * either: the admin activates the LV first (`lvchange -aey` on the host, which lvmlockd refuses
 * while another host holds it), then `virsh attach-device --live` makes QEMU open it, puts it with
 * its alias into the live XML and emits DeviceAdded; `virsh detach-device --live` makes the guest
 * let go of it, QEMU close it, the live XML lose it and libvirt emit DeviceRemoved.
 */
import { memoryOwnedStore, type OwnedLv, type OwnedStore } from '../../src/engine/owned.js';
import { DomainState } from '../../src/libvirt/enums.js';
import { HOT_DISKS, isHotLv, type DiskSpec, type GuestSpec } from './guests.js';
import type { Dom, SimHost, World } from './world.js';

/**
 * What goes wrong around the device event: none; a libvirt-dbus restart window around it (the
 * event is lost, the daemon reconciles once libvirt-dbus is back); the daemon crashes shortly
 * before or after the event and restarts.
 */
export type HotplugFault = 'none' | 'lose-event' | 'daemon-crash';

/** A host's daemon record (world.ts), noting every hot-plug LV it names: from then on that LV is the daemon's to release. */
export function hostOwnedStore(adopted: Set<string>): OwnedStore & { saved: OwnedLv[] } {
  const store = memoryOwnedStore();
  return {
    get saved() {
      return store.saved;
    },
    load: () => store.load(),
    save: (records) => {
      for (const r of records) if (isHotLv(r.lv)) adopted.add(r.lv);
      return store.save(records);
    },
  };
}

/** LVs an admin is hot-plugging right now: one admin does not hand one LV to two guests at once. */
const pending = new WeakMap<World, Set<string>>();

/** The host where the guest's QEMU runs with no migration job (libvirt refuses hot-plug during one). */
function runningHere(w: World, guest: GuestSpec): { host: SimHost; dom: Dom } | undefined {
  for (const host of w.hosts) {
    const dom = host.domains.get(guest.uuid);
    if (dom?.qemu && !dom.job && dom.state === DomainState.Running) return { host, dom };
  }
  return undefined;
}

/** Sets up the fault before the device change; the returned function finishes it after the event. */
function beginFault(w: World, host: SimHost, fault: HotplugFault): () => Promise<void> {
  if (fault === 'lose-event') {
    const windowMs = w.prng.range(200, 3000);
    host.eventsLostUntil = w.clock.now() + w.prng.range(0, 100) + windowMs;
    return async () => {
      await w.clock.sleep(Math.max(0, host.eventsLostUntil - w.clock.now()));
      await w.whileAlive(host, (c) => c.reconcile('libvirt-dbus restarted'));
    };
  }
  if (fault === 'daemon-crash') {
    // Before the event is delivered, or while the daemon handles it.
    const crashAt = w.clock.now() + w.prng.range(0, 600);
    const downMs = w.prng.pick([100, 2000, 15_000]);
    return async () => {
      await w.clock.sleep(Math.max(0, crashAt - w.clock.now()));
      if (!host.daemon) return;
      w.crashDaemon(host);
      await w.clock.sleep(downMs);
      if (!host.daemon) w.startDaemon(host);
    };
  }
  return () => Promise.resolve();
}

/**
 * The admin hot-plugs HOT_DISKS[lv] into the running guest, activating it on `adminHost` (by
 * mistake another host than the guest's; undefined = the guest's). An activation whose attach
 * never happens stays the admin's; a successful attach hands the LV to the domain.
 */
export async function attach(w: World, guest: GuestSpec, lv: number, adminHost: SimHost | undefined, fault: HotplugFault): Promise<void> {
  const here = runningHere(w, guest);
  if (!here) return;
  const { host, dom } = here;
  const disk = HOT_DISKS[lv % HOT_DISKS.length]!;
  if (dom.hot.includes(disk)) return;
  const admin = adminHost ?? host;
  // The admin does not hand a guest an LV that something on that host has open (`lvs` shows it).
  if (w.lvm.isOpen(admin.id, disk.lv) || w.lvm.isOpen(host.id, disk.lv)) return;
  let busy = pending.get(w);
  if (!busy) pending.set(w, (busy = new Set()));
  if (busy.has(disk.lv)) return;
  busy.add(disk.lv);
  try {
    await attachDisk(w, guest, host, dom, admin, disk, fault);
  } finally {
    busy.delete(disk.lv);
  }
}

async function attachDisk(w: World, guest: GuestSpec, host: SimHost, dom: Dom, admin: SimHost, disk: DiskSpec, fault: HotplugFault): Promise<void> {
  const wasHeld = w.lvm.holders(disk.lv).has(admin.id);
  const daemons = admin.owned.saved.some((r) => r.lv === disk.lv);
  const r = w.lvm.run(admin.id, 'lvm', ['lvchange', '-aey', disk.lv], w.clock.now());
  if (r.rc !== 0) {
    w.note(`${admin.name} admin lvchange -aey ${disk.lv} refused (rc ${r.rc}): no attach`);
    return;
  }
  // A fresh activation is the admin's until the attach hands it over. On an LV already active
  // here the command changes nothing: if the daemon holds it as its own (a disk just detached,
  // not yet released), the lock stays the daemon's and may go before the attach, which then fails.
  if (!wasHeld || !daemons) admin.adminHeld.add(disk.lv);
  // The daemon's record may name the LV already (a claim left by a crash): then it is the daemon's from the start.
  if (daemons) admin.adopted.add(disk.lv);
  else if (!wasHeld) admin.adopted.delete(disk.lv);
  w.note(`${admin.name} admin activated ${disk.lv} to attach it to ${guest.name} on ${host.name}`);
  await w.clock.sleep(w.prng.range(100, 3000));
  if (host.domains.get(guest.uuid) !== dom || !dom.qemu) return;
  const finish = beginFault(w, host, fault);
  if (!w.lvm.open(host.id, disk.lv)) {
    w.note(`${host.name} attach-device ${disk.lv} to ${guest.name} failed: QEMU cannot open it (not active here)`);
    return;
  }
  dom.hot.push(disk);
  host.adminHeld.delete(disk.lv);
  w.deviceEvent(host, guest.uuid, 'added', disk.alias);
  await finish();
}

/** The admin hot-unplugs the guest's hot-plugged disk number `lv`; the guest acks after a while. */
export async function detach(w: World, guest: GuestSpec, lv: number, fault: HotplugFault): Promise<void> {
  const here = runningHere(w, guest);
  if (!here || here.dom.hot.length === 0) return;
  const { host, dom } = here;
  const disk = dom.hot[lv % dom.hot.length]!;
  await w.clock.sleep(w.prng.range(20, 2000));
  if (host.domains.get(guest.uuid) !== dom || !dom.qemu || !dom.hot.includes(disk)) return;
  const finish = beginFault(w, host, fault);
  w.lvm.close(host.id, disk.lv);
  dom.hot = dom.hot.filter((d) => d !== disk);
  w.note(`${host.name} detached ${disk.lv} from ${guest.name}`);
  w.deviceEvent(host, guest.uuid, 'removed', disk.alias);
  await finish();
}
