/** DESIGN.md's invariants, checked from lvmlockd's and QEMU's side of the simulated cluster. */
import { GUESTS } from './guests.js';
import type { World } from './world.js';

function inHandoff(w: World, uuid: string, hostId: number): boolean {
  const h = w.handoffs.get(uuid);
  return h !== undefined && h.hosts.has(hostId) && w.clock.now() <= h.until;
}

/** After every step: (1) no ex beside another holder; (2) no QEMU on a non-shareable LV it does not hold. */
export function checkAlways(w: World): void {
  for (const key of w.lvm.keys()) {
    const holders = w.lvm.holders(key);
    if (holders.size > 1 && [...holders.values()].includes('ex')) {
      w.violate('1-single-writer-lock', `${key} is ex on one host while another holds it: ${[...holders].map(([h, m]) => `h${h}:${m}`).join(' ')}`);
    }
  }
  for (const g of GUESTS) {
    for (const d of g.disks) {
      if (d.shareable) continue;
      const runners = w.hosts.filter((h) => h.domains.get(g.uuid)?.qemu);
      for (const h of runners) {
        const mode = w.lvm.holders(d.lv).get(h.id);
        if (mode === 'ex' || (mode === 'sh' && inHandoff(w, g.uuid, h.id))) continue;
        w.violate('2-qemu-holds-its-lock', `QEMU of ${g.name} runs on ${h.name} with ${d.lv} ${mode ?? 'not held'} there${mode === 'sh' ? ' outside a live migration' : ''}`);
      }
      if (runners.length > 1 && !runners.every((h) => inHandoff(w, g.uuid, h.id))) {
        w.violate('2-one-writer', `${g.name} runs on ${runners.map((h) => h.name).join(' and ')} with ${d.lv} outside a live migration handoff`);
      }
    }
  }
}

/** After settling: (3) no lock leaked; (4) every running guest holds its own modes. */
export function checkSettled(w: World): void {
  for (const key of w.lvm.keys()) {
    for (const [hostId, mode] of w.lvm.holders(key)) {
      const host = w.hosts.find((h) => h.id === hostId)!;
      const used = [...host.domains.values()].some((d) => d.guest.disks.some((x) => x.lv === key));
      if (!used && !host.adminHeld.has(key)) w.violate('3-no-leak', `${key} stays ${mode} on ${host.name} where no domain uses it`);
    }
  }
  for (const h of w.hosts) {
    for (const dom of h.domains.values()) {
      if (!dom.qemu) {
        w.violate('settled', `${dom.guest.name} on ${h.name} is still starting or incoming after the run settled`);
        continue;
      }
      for (const d of dom.guest.disks) {
        const own = d.shareable ? 'sh' : 'ex';
        const mode = w.lvm.holders(d.lv).get(h.id);
        if (mode !== own) w.violate('4-own-modes', `${dom.guest.name} runs on ${h.name} with ${d.lv} ${mode ?? 'not held'}, not its own mode ${own}`);
      }
    }
  }
  if (w.inFlight > 0) w.violate('settled', `${w.inFlight} libvirt operations never finished (a hook or call hangs)`);
}
