/**
 * Where an LV's sanlock lease lies, from `lvm lvs --nolocking --reportformat json -o
 * vg_name,lv_name,lv_uuid,lv_lockargs VG/LV`. Pure.
 *
 * lvmlockd writes an LV's lock args as "<major>.<minor>.<patch>:<offset>" (lvmlockd-sanlock.c:
 * the offset is the last ":"-separated field, a decimal byte offset into the VG's hidden
 * `lvmlock` LV), e.g. "1.0.0:70254592". Thin LVs have none: they are locked through their pool.
 */

export interface LeaseLocation {
  vg: string;
  lv: string;
  /** Dashed, as lvs prints it; lvmlockd names the LV's sanlock resource by it. */
  uuid: string;
  /** Byte offset of the lease on /dev/mapper/<vg>-lvmlock. */
  offset: number;
}

/** The lvs arguments (after the lvm binary) that read one LV's lock args. */
export function lockArgsCommand(vg: string, lv: string): string[] {
  // --nolocking: a read of metadata that never changes for an existing LV; without it lvs would
  // take the VG lock through lvmlockd and could wait behind another host's command.
  return ['lvs', '--nolocking', '--reportformat', 'json', '-o', 'vg_name,lv_name,lv_uuid,lv_lockargs', `${vg}/${lv}`];
}

/** The lease offset in LV lock args; throws naming what is wrong. Only major version 1 is known. */
export function leaseOffset(lockArgs: string): number {
  const m = /^(\d+)\.(\d+)\.(\d+)(?::.*)?:(\d+)$/.exec(lockArgs.trim());
  if (!m) {
    if (lockArgs.trim() === '') throw new Error('it has no lock args of its own (a thin LV is locked through its pool)');
    throw new Error(`its lock args ${JSON.stringify(lockArgs)} are not "<version>:<offset>"`);
  }
  if (m[1] !== '1') throw new Error(`its lock args ${JSON.stringify(lockArgs)} have version ${m[1]}.${m[2]}.${m[3]}, which this daemon does not know`);
  const offset = Number(m[4]);
  if (!Number.isSafeInteger(offset)) throw new Error(`its lease offset ${m[4]} is out of range`);
  return offset;
}

/** Reads the one LV row of the JSON report; throws naming what is wrong. */
export function parseLockArgsReport(stdout: string, vg: string, lv: string): LeaseLocation {
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch {
    throw new Error(`lvs output is not a JSON report: ${JSON.stringify(stdout.slice(0, 200))}`);
  }
  const report = (doc as { report?: unknown } | null)?.report;
  if (!Array.isArray(report)) throw new Error('lvs JSON output has no "report" list');
  const rows: Record<string, unknown>[] = [];
  for (const part of report) {
    const list = (part as Record<string, unknown> | null)?.lv;
    if (Array.isArray(list)) rows.push(...(list as Record<string, unknown>[]));
  }
  const row = rows.find((r) => r && r.vg_name === vg && r.lv_name === lv);
  if (!row) throw new Error(`lvs did not report ${vg}/${lv}`);
  const uuid = row.lv_uuid;
  if (typeof uuid !== 'string' || !/^[A-Za-z0-9]{6}(-[A-Za-z0-9]{4}){5}-[A-Za-z0-9]{6}$/.test(uuid)) {
    throw new Error(`lvs gave ${vg}/${lv} no usable lv_uuid (${JSON.stringify(uuid)})`);
  }
  const args = row.lv_lockargs;
  if (typeof args !== 'string') throw new Error(`lvs gave ${vg}/${lv} no lv_lockargs field`);
  try {
    return { vg, lv, uuid, offset: leaseOffset(args) };
  } catch (err) {
    throw new Error(`${vg}/${lv}: ${(err as Error).message}`);
  }
}
