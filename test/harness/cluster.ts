import { readClusterState } from '../lvm-sim/state.js';
import type { TestHost } from './host.js';

/** Creates the shared VG layout the integration tests use, on the simulator's cluster state. */
export async function setupSharedVg(host: TestHost, hostIds: number[] = [host.hostId]): Promise<void> {
  await host.sim('init');
  await host.sim('create-vg', 'vg0', '--lock-type', 'sanlock');
  for (const lv of ['lv1', 'lv2', 'lv3', 'lv4', 'shared1']) await host.sim('create-lv', 'vg0', lv);
  await host.sim('create-vg', 'localvg', '--lock-type', 'none');
  await host.sim('create-lv', 'localvg', 'scratch');
  for (const id of hostIds) await host.simAs(id, 'lockstart', 'vg0');
}

/** This host's modes per LV, read from the simulator's cluster state (what lvmlockd granted). */
export async function heldBy(host: TestHost, hostId = host.hostId): Promise<Map<string, string>> {
  const state = await readClusterState(host.stateFile);
  const held = new Map<string, string>();
  for (const lv of state.lvs) {
    for (const h of lv.holders) if (h.hostId === hostId) held.set(`${lv.vg}/${lv.lv}`, h.mode);
  }
  return held;
}

/** Invariant 1 of the design: no LV is ex on one host while held on another. */
export async function assertNoConflicts(host: TestHost): Promise<void> {
  const state = await readClusterState(host.stateFile);
  for (const lv of state.lvs) {
    const ex = lv.holders.filter((h) => h.mode === 'ex');
    if (ex.length > 0 && lv.holders.length > 1) {
      throw new Error(`${lv.vg}/${lv.lv} is ex on host ${ex[0].hostId} while held by ${JSON.stringify(lv.holders)}`);
    }
  }
}
