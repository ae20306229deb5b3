import { constants } from 'node:os';

/**
 * The owners of one LV lease as the sanlock daemon reads them from disk: `sanlock client read
 * -r RESOURCE -h 1` (sanlock src/main.c do_client_read, sanlock 3.8). It prints, on stdout:
 *   r <lockspace>:<resource>:<path>:<offset>:<lver or SH>     (sanlock_res_to_str)
 *   h <host_id> gen <generation> timestamp <timestamp>        the leader's owner: ex
 *   h <host_id> gen <generation>                              a shared owner (mode block)
 * and "read error <negative errno>" with exit 1 when the read fails. Pure.
 */

export interface LeaseOwner {
  hostId: number;
  generation: number;
  /** The leader's owner holds the lease ex; a mode-block owner holds it sh. */
  mode: 'ex' | 'sh';
  /** The owner's renewal time in its own monotonic seconds (not a wall clock); ex only. */
  timestamp?: number;
}

/** lvmlockd's resource for an LV lease: lockspace lvm_<vg>, resource = LV UUID, on the VG's lvmlock LV. */
export function leaseResource(vg: string, uuid: string, offset: number): string {
  return `lvm_${vg}:${uuid}:${lvmlockPath(vg)}:${offset}`;
}

/** The hidden lease LV's device, as device-mapper names it (a "-" in the VG name is doubled). */
export function lvmlockPath(vg: string): string {
  return `/dev/mapper/${vg.replace(/-/g, '--')}-lvmlock`;
}

/** The sanlock arguments that read one lease's owners. */
export function clientReadCommand(resource: string): string[] {
  return ['client', 'read', '-r', resource, '-h', '1'];
}

function errnoName(n: number): string | undefined {
  return Object.entries(constants.errno).find(([, v]) => v === n)?.[0];
}

/** sanlock's own error codes seen on reads (sanlock_rv.h), beside negative errnos. */
const SANLOCK_CODES: Record<number, string> = {
  [-202]: 'SANLK_AIO_TIMEOUT: lease I/O timed out',
  [-223]: 'SANLK_LEADER_MAGIC: no lease at that offset',
};

function readError(code: number): string {
  const name = SANLOCK_CODES[code] ?? errnoName(-code);
  const hint = code === -2 ? ' (is the sanlock daemon running?)' : code === -13 ? ' (permission denied: run as root)' : '';
  return `read error ${code}${name ? ` ${name}` : ''}${hint}`;
}

/** The owners, or throws naming what sanlock said. `rc` is the exit code (0 on success). */
export function parseClientRead(stdout: string, rc: number | null): LeaseOwner[] {
  const lines = stdout.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  const failed = lines.map((l) => /^read error (-?\d+)$/.exec(l)).find((m) => m);
  if (failed) throw new Error(readError(Number(failed[1])));
  if (rc !== 0) throw new Error(`exit code ${rc}${lines.length ? `: ${lines.join('; ').slice(0, 200)}` : ' with no output'}`);
  if (!lines.some((l) => l.startsWith('r '))) throw new Error(`no "r" line in its output: ${JSON.stringify(stdout.slice(0, 200))}`);
  const owners: LeaseOwner[] = [];
  for (const line of lines) {
    if (!line.startsWith('h ')) continue;
    const m = /^h (\d+) gen (\d+)(?: timestamp (\d+))?$/.exec(line);
    if (!m) throw new Error(`cannot read the owner line ${JSON.stringify(line)}`);
    const owner: LeaseOwner = { hostId: Number(m[1]), generation: Number(m[2]), mode: m[3] === undefined ? 'sh' : 'ex' };
    if (m[3] !== undefined) owner.timestamp = Number(m[3]);
    owners.push(owner);
  }
  return owners;
}
