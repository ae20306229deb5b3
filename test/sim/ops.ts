/**
 * What libvirt does on each host, in the orders its source produces (hooks, QEMU, events), as
 * procedures on the virtual clock. Each step of a schedule starts one of them.
 */
import { DomainEvent, DomainState, PausedReason, RunningReason } from '../../src/libvirt/enums.js';
import { ADMIN_LV, type DiskSpec, type GuestSpec } from './guests.js';
import { attach, detach, type HotplugFault } from './hotplug.js';
import type { Dom, SimHost, World } from './world.js';
import { HANDOFF_GRACE_MS } from './world.js';

export type MigrationFault = 'none' | 'prepare-fails' | 'before-switchover' | 'after-switchover' | 'postcopy-fails';

export type Step =
  | { op: 'start'; host: number; guest: number; gap: number }
  | { op: 'stop'; host: number; guest: number; how: 'shutdown' | 'destroy' | 'crash'; gap: number }
  | { op: 'migrate'; from: number; to: number; guest: number; fault: MigrationFault; postcopy: boolean; loseEvents: boolean; gap: number }
  | { op: 'offline'; from: number; to: number; guest: number; gap: number }
  | { op: 'abandon'; from: number; to: number; guest: number; gap: number }
  | { op: 'dup-incoming'; host: number; guest: number; gap: number }
  | { op: 'rogue-demote'; from: number; to: number; guest: number; gap: number }
  | { op: 'daemon-crash'; host: number; downMs: number; gap: number }
  | { op: 'dbus-restart'; host: number; windowMs: number; gap: number }
  | { op: 'pools-broken'; host: number; gap: number }
  | { op: 'admin-activate'; host: number; gap: number }
  | { op: 'attach'; guest: number; lv: number; adminHost: number | null; fault: HotplugFault; gap: number }
  | { op: 'detach'; guest: number; lv: number; fault: HotplugFault; gap: number }
  | { op: 'net'; loss: number; dup: number; gap: number }
  | { op: 'reconcile'; host: number; gap: number };

const S = DomainEvent;

/** Libvirt's domain job lock: one lifecycle operation per guest at a time, cluster-wide here. */
const busy = new WeakMap<World, Set<number>>();

function claim(w: World, guest: GuestSpec): boolean {
  let set = busy.get(w);
  if (!set) busy.set(w, (set = new Set()));
  if (set.has(guest.index)) return false;
  set.add(guest.index);
  return true;
}

function unclaim(w: World, guest: GuestSpec): void {
  busy.get(w)?.delete(guest.index);
}

function runningOn(w: World, guest: GuestSpec): SimHost | undefined {
  return w.hosts.find((h) => h.domains.get(guest.uuid)?.qemu);
}

function handoff(w: World, guest: GuestSpec, hosts: SimHost[], running: boolean): void {
  w.handoffs.set(guest.uuid, { hosts: new Set(hosts.map((h) => h.id)), until: running ? Infinity : w.clock.now() + HANDOFF_GRACE_MS });
}

/** qemuProcessStop: QEMU gone, hooks stopped end and release end, then the Stopped event. */
async function stopQemu(w: World, host: SimHost, dom: Dom, detail: number, before?: () => void): Promise<void> {
  if (dom.qemu) w.closeDisks(host, dom);
  dom.qemu = false;
  before?.();
  await w.hook(host, dom.guest, 'stopped', 'end', dom.hot);
  host.domains.delete(dom.guest.uuid);
  await w.hook(host, dom.guest, 'release', 'end', dom.hot);
  if (detail >= 0) w.event(host, dom.guest.uuid, S.Stopped, detail);
}

/** A failed start or incoming Prepare: no event, only the stop hooks. */
async function failStart(w: World, host: SimHost, dom: Dom): Promise<void> {
  await stopQemu(w, host, dom, -1);
}

async function start(w: World, host: SimHost, guest: GuestSpec): Promise<void> {
  if (host.domains.has(guest.uuid)) return;
  const dom: Dom = { guest, qemu: false, state: DomainState.Paused, reason: PausedReason.StartingUp, job: false, hot: [] };
  if (!(await w.hook(host, guest, 'prepare'))) return;
  host.domains.set(guest.uuid, dom);
  if (!(await w.hook(host, guest, 'start')) || !w.openDisks(host, guest)) return failStart(w, host, dom);
  dom.qemu = true;
  await w.clock.sleep(w.prng.range(300, 1200));
  if (!(await w.hook(host, guest, 'started'))) return failStart(w, host, dom);
  dom.state = DomainState.Running;
  dom.reason = 1;
  w.event(host, guest.uuid, S.Resumed, 0);
  w.event(host, guest.uuid, S.Started, 0);
}

async function stop(w: World, host: SimHost, guest: GuestSpec, how: 'shutdown' | 'destroy' | 'crash'): Promise<void> {
  const dom = host.domains.get(guest.uuid);
  if (!dom?.qemu || dom.job) return;
  if (how === 'destroy') w.event(host, guest.uuid, S.Shutdown, 2);
  await stopQemu(w, host, dom, how === 'shutdown' ? 0 : how === 'destroy' ? 1 : 2);
}

/** The destination's Prepare up to the incoming QEMU (paused); undefined when it failed. The XML carries the hot-plugged disks. */
async function prepareIncoming(w: World, dst: SimHost, guest: GuestSpec, fault: MigrationFault, hot: readonly DiskSpec[]): Promise<Dom | undefined> {
  if (!(await w.hook(dst, guest, 'migrate', 'begin', hot))) return undefined;
  if (dst.domains.has(guest.uuid)) return undefined; // "domain is already active": no hook, no event
  const dom: Dom = { guest, qemu: false, state: DomainState.Paused, reason: PausedReason.Migration, job: false, hot: [...hot] };
  if (!(await w.hook(dst, guest, 'prepare', 'begin', hot))) return undefined;
  dst.domains.set(guest.uuid, dom);
  if (fault === 'prepare-fails' || !(await w.hook(dst, guest, 'start', 'begin', hot)) || !w.openDisks(dst, guest, hot)) {
    await failStart(w, dst, dom);
    return undefined;
  }
  dom.qemu = true;
  await w.clock.sleep(w.prng.range(300, 1000));
  if (!(await w.hook(dst, guest, 'started', 'begin', hot))) {
    await failStart(w, dst, dom);
    return undefined;
  }
  w.event(dst, guest.uuid, S.Started, 1);
  return dom;
}

async function migrate(w: World, src: SimHost, dst: SimHost, guest: GuestSpec, fault: MigrationFault, postcopy: boolean, loseEvents: boolean): Promise<void> {
  const sdom = src.domains.get(guest.uuid);
  if (!sdom?.qemu || sdom.job || src === dst || sdom.state !== DomainState.Running) return;
  sdom.job = true;
  handoff(w, guest, [src, dst], true);
  try {
    sdom.preparing = true;
    const ddom = await prepareIncoming(w, dst, guest, fault, sdom.hot).finally(() => {
      sdom.preparing = false;
    });
    if (!ddom) return;
    await w.clock.sleep(w.prng.range(50, 1500));
    if (fault === 'before-switchover') {
      await stopQemu(w, dst, ddom, 5);
      return;
    }
    if (loseEvents) for (const h of [src, dst]) h.eventsLostUntil = w.clock.now() + w.prng.range(100, 3000);
    sdom.state = DomainState.Paused;
    sdom.reason = PausedReason.Migration;
    w.event(src, guest.uuid, S.Suspended, postcopy ? 7 : 1);
    await w.clock.sleep(w.prng.range(20, 300));
    if (fault === 'after-switchover') {
      await stopQemu(w, dst, ddom, 5);
      sdom.state = DomainState.Running;
      sdom.reason = 6;
      w.event(src, guest.uuid, S.Resumed, 1);
      return;
    }
    ddom.state = DomainState.Running;
    ddom.reason = postcopy ? 10 : 2;
    if (postcopy) {
      w.event(dst, guest.uuid, S.Resumed, 3);
      await w.clock.sleep(w.prng.range(100, 3000));
      if (fault === 'postcopy-fails') {
        // The connection breaks during post-copy: the source stays paused and cannot resume,
        // the destination runs on (libvirt.md §4). The admin then destroys the source side.
        sdom.reason = PausedReason.PostcopyFailed;
        w.event(src, guest.uuid, S.Suspended, 8);
        ddom.reason = RunningReason.PostcopyFailed;
        w.event(dst, guest.uuid, S.Resumed, 4);
        await w.clock.sleep(w.prng.range(1000, 30_000));
        await stopQemu(w, src, sdom, 1);
        return;
      }
    } else {
      w.event(dst, guest.uuid, S.Defined, 0);
      w.event(dst, guest.uuid, S.Resumed, 1);
    }
    await w.clock.sleep(w.prng.range(50, 400));
    await stopQemu(w, src, sdom, 3);
    if (postcopy) {
      // qemuMigrationDstComplete: the guest runs as migrated once post-copy has completed.
      ddom.reason = 2;
      w.event(dst, guest.uuid, S.Resumed, 1);
    }
  } finally {
    sdom.job = false;
    handoff(w, guest, [src, dst], false);
  }
}

/** Offline migration: the destination's `migrate begin` hook, then only the new definition. */
async function offline(w: World, src: SimHost, dst: SimHost, guest: GuestSpec, abandon: boolean): Promise<void> {
  const sdom = src.domains.get(guest.uuid);
  if (!sdom?.qemu || sdom.job || src === dst) return;
  sdom.job = true;
  sdom.preparing = true;
  // The destination's migrate hook cannot tell an offline migration from a live one (libvirt
  // passes the same arguments and XML), so the source may demote for it: sh on the source is
  // allowed for as long as after a live migration, and the daemons must end it by then.
  handoff(w, guest, [src, dst], true);
  const ok = await w.hook(dst, guest, 'migrate');
  sdom.preparing = false;
  sdom.job = false;
  handoff(w, guest, [src, dst], false);
  if (ok && !abandon) w.event(dst, guest.uuid, S.Defined, 0);
  if (!ok) return;
  // Later an admin starts the guest there (`virsh start`). An offline migration left its
  // definition there; after an abandoned one the admin must define it first (`virsh define`,
  // which libvirt announces with the same Defined event).
  if (abandon) {
    await w.clock.sleep(w.prng.range(1000, 60_000));
    w.event(dst, guest.uuid, S.Defined, 0);
  }
  await w.clock.sleep(w.prng.range(1000, 60_000));
  await start(w, dst, guest);
}

export async function runStep(w: World, step: Step): Promise<void> {
  const host = (i: number) => w.hosts[i % w.hosts.length]!;
  switch (step.op) {
    case 'net':
      w.net.loss = step.loss;
      w.net.dup = step.dup;
      return;
    case 'daemon-crash': {
      const h = host(step.host);
      if (!h.daemon) return;
      w.crashDaemon(h);
      await w.clock.sleep(step.downMs);
      if (!h.daemon) w.startDaemon(h);
      return;
    }
    case 'dbus-restart': {
      const h = host(step.host);
      h.eventsLostUntil = w.clock.now() + step.windowMs;
      await w.clock.sleep(step.windowMs);
      await w.whileAlive(h, (c) => c.reconcile('libvirt-dbus restarted'));
      return;
    }
    case 'pools-broken': {
      const h = host(step.host);
      h.poolsBroken = true;
      w.crashDaemon(h);
      await w.clock.sleep(500);
      w.startDaemon(h);
      await w.clock.sleep(20_000);
      h.poolsBroken = false;
      return;
    }
    case 'admin-activate': {
      const h = host(step.host);
      const r = w.lvm.run(h.id, 'lvm', ['lvchange', '-aey', ADMIN_LV], w.clock.now());
      if (r.rc === 0) h.adminHeld.add(ADMIN_LV);
      return;
    }
    case 'reconcile':
      await w.whileAlive(host(step.host), (c) => c.reconcile('timer'));
      return;
    case 'rogue-demote': {
      const [from, to] = [host(step.from), host(step.to)];
      const g = w.guest(step.guest);
      if (from === to || !to.domains.get(g.uuid)?.qemu) return;
      await w.whileAlive(to, (c) => c.onPeerMessage('demote', { domain: g.uuid, lvs: g.disks.map((d) => d.lv).sort() }, from.name)).then(
        (a) => {
          if (!a) return;
          if (to.domains.get(g.uuid)?.job) return;
          if (a.result === 'demoted') w.violate('demote-without-migration', `${to.name} demoted ${g.name} for ${from.name} without an outgoing migration job`);
          else if (new RegExp(`\\b${g.name}\\b`).test(a.detail)) w.violate('demote-refusal-leak', `${to.name} refused a demote with details of ${g.name}: ${a.detail}`);
        },
        () => undefined,
      );
      return;
    }
    default:
      break;
  }
  const g = w.guest(step.guest);
  if (!claim(w, g)) return;
  try {
    switch (step.op) {
      case 'start':
        if (!runningOn(w, g) || w.prng.chance(0.3)) await start(w, host(step.host), g);
        return;
      case 'stop':
        return await stop(w, host(step.host), g, step.how);
      case 'migrate':
        return await migrate(w, host(step.from), host(step.to), g, step.fault, step.postcopy, step.loseEvents);
      case 'offline':
        return await offline(w, host(step.from), host(step.to), g, false);
      case 'abandon':
        return await offline(w, host(step.from), host(step.to), g, true);
      case 'attach':
        return await attach(w, g, step.lv, step.adminHost === null ? undefined : host(step.adminHost), step.fault);
      case 'detach':
        return await detach(w, g, step.lv, step.fault);
      case 'dup-incoming': {
        const h = host(step.host);
        const dom = h.domains.get(g.uuid);
        if (dom?.qemu) await w.hook(h, g, 'migrate', 'begin', dom.hot);
        return;
      }
    }
  } finally {
    unclaim(w, g);
  }
}
