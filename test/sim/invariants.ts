/** DESIGN.md's invariants, checked from lvmlockd's and QEMU's side of the simulated cluster. */
import { isHotLv, type DiskSpec } from './guests.js';
import type { Dom, SimHost, World } from './world.js';

function inHandoff(w: World, uuid: string, hostId: number): boolean {
  const h = w.handoffs.get(uuid);
  return h !== undefined && h.hosts.has(hostId) && w.clock.now() <= h.until;
}

/** A domain's disks: its own, then those hot-plugged into its QEMU. */
function disksOf(dom: Dom): DiskSpec[] {
  return [...dom.guest.disks, ...dom.hot];
}

/** After every step: (1) no ex beside another holder; (2) no QEMU on a non-shareable LV it does not hold. */
export function checkAlways(w: World): void {
  for (const key of w.lvm.keys()) {
    const holders = w.lvm.holders(key);
    if (holders.size > 1 && [...holders.values()].includes('ex')) {
      w.violate('1-single-writer-lock', `${key} is ex on one host while another holds it: ${[...holders].map(([h, m]) => `h${h}:${m}`).join(' ')}`);
    }
  }
  const writers = new Map<string, Array<{ host: SimHost; dom: Dom }>>();
  for (const h of w.hosts) {
    for (const dom of h.domains.values()) {
      if (!dom.qemu) continue;
      for (const d of disksOf(dom)) {
        if (d.shareable) continue;
        writers.set(d.lv, [...(writers.get(d.lv) ?? []), { host: h, dom }]);
        const mode = w.lvm.holders(d.lv).get(h.id);
        if (mode === 'ex' || (mode === 'sh' && inHandoff(w, dom.guest.uuid, h.id))) continue;
        w.violate('2-qemu-holds-its-lock', `QEMU of ${dom.guest.name} runs on ${h.name} with ${d.lv} ${mode ?? 'not held'} there${mode === 'sh' ? ' outside a live migration' : ''}`);
      }
    }
  }
  for (const [lv, runners] of writers) {
    if (runners.length < 2) continue;
    const guests = new Set(runners.map((r) => r.dom.guest.name));
    if (guests.size > 1) w.violate('2-one-writer', `${lv} is open by QEMUs of different guests: ${runners.map((r) => `${r.dom.guest.name} on ${r.host.name}`).join(', ')}`);
    else if (!runners.every((r) => inHandoff(w, r.dom.guest.uuid, r.host.id))) {
      w.violate('2-one-writer', `${[...guests][0]} runs on ${runners.map((r) => r.host.name).join(' and ')} with ${lv} outside a live migration handoff`);
    }
  }
}

/**
 * Whether a held LV no domain uses may stay held on the host after settling: the admin's own
 * activation stands, or it is a hot-plug LV the daemon never adopted (both device events missed
 * with no reconcile between them: to the daemon it is an LV the admin activated, not its own).
 */
function mayStay(host: SimHost, key: string): boolean {
  return host.adminHeld.has(key) || (isHotLv(key) && !host.adopted.has(key));
}

/** After settling: (3) no lock leaked; (4) every running guest holds its own modes, hot-plugged disks adopted. */
export function checkSettled(w: World): void {
  for (const key of w.lvm.keys()) {
    for (const [hostId, mode] of w.lvm.holders(key)) {
      const host = w.hosts.find((h) => h.id === hostId)!;
      const used = [...host.domains.values()].some((d) => disksOf(d).some((x) => x.lv === key));
      if (used || mayStay(host, key)) continue;
      const why = isHotLv(key) ? ': it was hot-unplugged (or its guest stopped) after the daemon adopted it' : ' where no domain uses it';
      w.violate('3-no-leak', `${key} stays ${mode} on ${host.name}${why}`);
    }
  }
  for (const h of w.hosts) {
    for (const dom of h.domains.values()) {
      if (!dom.qemu) {
        w.violate('settled', `${dom.guest.name} on ${h.name} is still starting or incoming after the run settled`);
        continue;
      }
      for (const d of disksOf(dom)) {
        const own = d.shareable ? 'sh' : 'ex';
        const mode = w.lvm.holders(d.lv).get(h.id);
        if (mode !== own) w.violate('4-own-modes', `${dom.guest.name} runs on ${h.name} with ${d.lv} ${mode ?? 'not held'}, not its own mode ${own}`);
      }
      for (const d of dom.hot) {
        if (!h.owned.saved.some((r) => r.lv === d.lv && r.domain === dom.guest.uuid)) {
          w.violate('4-hotplug-adopted', `${dom.guest.name} runs on ${h.name} with ${d.lv} hot-plugged, but the daemon's record does not name it as that domain's: it would never release it`);
        }
      }
    }
  }
  if (w.inFlight > 0) w.violate('settled', `${w.inFlight} libvirt operations never finished (a hook or call hangs)`);
}
