/**
 * The behaviour of lvm2 2.03.16 + lvmlockd + sanlock that virt-lvmlockd relies on, written once
 * and run against any backend: the simulator, or real lvmlockd in two guests sharing a disk.
 * Only what an lvm user can see is compared (exit codes, exact stderr lines, lvs and
 * lvmlockctl read-back), never a backend's internals.
 *
 * Sources: measured on the two-guest testbed unless a test says "code-read" (derived from the
 * lvm2 v2_03_16 sources; running this contract on real lvmlockd confirms or refutes it).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

export type Host = 'A' | 'B';

export interface CommandResult {
  rc: number;
  stdout: string;
  stderr: string;
}

/**
 * Two hosts A and B sharing a sanlock VG that holds, created in this order, two linear LVs
 * (`plain`, `plain2`) and a thin LV (`thin`, in a thin pool). makeBackend returns them with the
 * lockspace started on both hosts and every LV inactive and closed on both; dispose undoes
 * whatever a test changed (a backend reused across tests resets the cluster there).
 */
export interface LvmBackend {
  /** Runs a command line on a host, e.g. ['lvm', 'lvchange', '-aey', 'vg0/lv1'] or ['lvmlockctl', '--info']. */
  run(host: Host, argv: string[]): Promise<CommandResult>;
  /** A process on the host opens the LV's device and keeps it open (as QEMU does). */
  open(host: Host, lv: string): Promise<void>;
  close(host: Host, lv: string): Promise<void>;
  dispose(): Promise<void>;
  lvs: { plain: string; plain2: string; thin: string };
  /** sanlock host_id of each host. */
  hostIds: Record<Host, number>;
  /** lvm >= 2.03.33 appends " (host_id N)" to "LV locked by other host"; 2.03.16 does not. */
  hostIdSuffix: boolean;
}

export interface ContractOptions {
  /** Run the scenarios concurrently (only for backends that make an independent cluster each time). */
  concurrency?: boolean;
}

type Mode = 'ex' | 'sh' | 'un';

/** What `lvs -o lv_name,lv_active_exclusively,lv_attr` shows on one host. */
interface LvsView {
  attr: string;
  exclusively: string;
}

const INACTIVE: LvsView = { attr: '-wi-------', exclusively: '' };
const ACTIVE: LvsView = { attr: '-wi-a-----', exclusively: 'active exclusively' };
/** Under sh as under ex: lvm <= 2.03.17 reads "active exclusively" whenever the LV is active here. */
const OPEN: LvsView = { attr: '-wi-ao----', exclusively: 'active exclusively' };
const LVS_FIELDS = ['lv_name', 'lv_active_exclusively', 'lv_attr'];

/** One scenario's view of the backend, with the checks the scenarios share. */
class Session {
  private readonly opened: Array<[Host, string]> = [];
  private readonly uuids = new Map<string, string>();

  constructor(readonly backend: LvmBackend) {}

  get lv() {
    return this.backend.lvs;
  }

  vgOf(lv: string): string {
    return lv.slice(0, lv.indexOf('/'));
  }

  lvm(host: Host, ...args: string[]): Promise<CommandResult> {
    return this.backend.run(host, ['lvm', ...args]);
  }

  async ok(host: Host, ...args: string[]): Promise<CommandResult> {
    const r = await this.lvm(host, ...args);
    assert.equal(r.rc, 0, `lvm ${args.join(' ')} on ${host}: rc ${r.rc}, stderr: ${r.stderr}`);
    return r;
  }

  /** An lvchange that succeeds prints nothing. */
  async lvchange(host: Host, ...args: string[]): Promise<void> {
    const r = await this.ok(host, 'lvchange', ...args);
    assert.equal(r.stderr, '', `lvchange ${args.join(' ')} on ${host} printed on stderr`);
    assert.equal(r.stdout, '', `lvchange ${args.join(' ')} on ${host} printed on stdout`);
  }

  /** lvchange fails with exit 5 and exactly these stderr lines (lvm indents them by two spaces). */
  async lvchangeFails(host: Host, args: string[], lines: string[]): Promise<void> {
    const r = await this.lvm(host, 'lvchange', ...args);
    assert.equal(r.rc, 5, `lvchange ${args.join(' ')} on ${host}: expected rc 5, got ${r.rc} (stderr: ${r.stderr})`);
    assert.equal(r.stderr, lines.map((l) => `  ${l}\n`).join(''), `stderr of lvchange ${args.join(' ')} on ${host}`);
  }

  /** E1: the refusal text, with the owner's host_id on lvm versions that print it. */
  refusal(lockLv: string, owner: Host, lv: string = lockLv): string[] {
    const suffix = this.backend.hostIdSuffix ? ` (host_id ${this.backend.hostIds[owner]})` : '';
    return [`LV locked by other host: ${lockLv}${suffix}`, `Failed to lock logical volume ${lv}.`];
  }

  async open(host: Host, lv: string): Promise<void> {
    await this.backend.open(host, lv);
    this.opened.push([host, lv]);
  }

  async close(host: Host, lv: string): Promise<void> {
    await this.backend.close(host, lv);
    this.opened.splice(this.opened.findIndex(([h, l]) => h === host && l === lv), 1);
  }

  async closeAll(): Promise<void> {
    for (const [host, lv] of this.opened.splice(0).reverse()) await this.backend.close(host, lv);
  }

  async lvsJson(host: Host, fields: string[], lv: string): Promise<CommandResult & { rows: Array<Record<string, string>> }> {
    const r = await this.ok(host, 'lvs', '--reportformat', 'json', '-o', fields.join(','), lv);
    const report = JSON.parse(r.stdout) as { report: Array<{ lv: Array<Record<string, string>> }> };
    return { ...r, rows: report.report[0].lv };
  }

  async uuid(lv: string): Promise<string> {
    let uuid = this.uuids.get(lv);
    if (uuid === undefined) {
      const { rows } = await this.lvsJson('A', ['lv_uuid'], lv);
      uuid = rows[0].lv_uuid;
      assert.match(uuid, /^[A-Za-z0-9]{6}(-[A-Za-z0-9]{4}){5}-[A-Za-z0-9]{6}$/, `lv_uuid of ${lv}`);
      this.uuids.set(lv, uuid);
    }
    return uuid;
  }

  /** The pool of a thin LV, as "vg/pool" (its lock is the pool's). */
  async poolOf(thin: string): Promise<string> {
    const { rows } = await this.lvsJson('A', ['pool_lv'], thin);
    assert.notEqual(rows[0].pool_lv, '', `${thin} has no pool`);
    return `${this.vgOf(thin)}/${rows[0].pool_lv}`;
  }

  async lockctl(host: Host): Promise<string[]> {
    const r = await this.backend.run(host, ['lvmlockctl', '--info']);
    assert.equal(r.rc, 0, `lvmlockctl --info on ${host}: rc ${r.rc}, stderr: ${r.stderr}`);
    return r.stdout.split('\n');
  }

  /** The `LK LV` mode lvmlockd shows on a host: undefined if the host never asked for the lock. */
  async lockMode(host: Host, lv: string): Promise<Mode | undefined> {
    const uuid = await this.uuid(lv);
    const lines = (await this.lockctl(host)).filter((l) => l.startsWith('LK LV ') && l.endsWith(` ${uuid}`));
    assert.ok(lines.length <= 1, `several LK LV lines for ${lv} on ${host}: ${lines.join(' | ')}`);
    return lines.length === 0 ? undefined : (lines[0].split(' ')[2] as Mode);
  }

  /** The lock a host holds: ex, sh, or undefined (released "un", or never taken). */
  async held(host: Host, lv: string): Promise<'ex' | 'sh' | undefined> {
    const mode = await this.lockMode(host, lv);
    return mode === 'un' ? undefined : mode;
  }

  async expectHeld(host: Host, lv: string, mode: 'ex' | 'sh' | undefined): Promise<void> {
    assert.equal(await this.held(host, lv), mode, `lock held by ${host} on ${lv}`);
  }

  /** Read-back through lvs: the fields come back in the -o order, all strings. */
  async expectLvs(host: Host, lv: string, view: LvsView): Promise<void> {
    const { rows, stderr } = await this.lvsJson(host, LVS_FIELDS, lv);
    assert.equal(stderr, '');
    assert.equal(rows.length, 1);
    assert.deepEqual(Object.keys(rows[0]), LVS_FIELDS);
    assert.deepEqual(rows[0], { lv_name: lv.slice(lv.indexOf('/') + 1), lv_active_exclusively: view.exclusively, lv_attr: view.attr }, `lvs of ${lv} on ${host}`);
  }
}

export function defineLvmContract(name: string, makeBackend: () => Promise<LvmBackend>, options: ContractOptions = {}): void {
  const scenario = (title: string, body: (s: Session) => Promise<void>) =>
    test(title, async () => {
      const backend = await makeBackend();
      const session = new Session(backend);
      try {
        await body(session);
      } finally {
        try {
          await session.closeAll();
        } finally {
          await backend.dispose();
        }
      }
    });

  describe(`LVM contract: ${name}`, { concurrency: options.concurrency ?? false }, () => {
    scenario('ex on A refuses sh, ex and plain -ay on B, with the exact lvm text and exit 5', async (s) => {
      const { plain } = s.lv;
      await s.lvchange('A', '-aey', plain);
      for (const flag of ['-asy', '-aey', '-ay']) await s.lvchangeFails('B', [flag, plain], s.refusal(plain, 'A'));
      await s.expectHeld('A', plain, 'ex');
      // A refused request still leaves lvmlockd's resource behind, unlocked (measured state S1).
      assert.equal(await s.lockMode('B', plain), 'un');
      await s.expectLvs('A', plain, ACTIVE);
      await s.expectLvs('B', plain, INACTIVE);
    });

    scenario('the long forms -a ey / --activate sy are the same requests', async (s) => {
      const { plain } = s.lv;
      await s.lvchange('A', '-a', 'ey', plain);
      await s.lvchangeFails('B', ['--activate', 'sy', plain], s.refusal(plain, 'A'));
      await s.lvchange('A', '--activate', 'sy', plain);
      await s.expectHeld('A', plain, 'sh');
    });

    scenario('ex converts to sh in place on A while the LV is open; then B shares it', async (s) => {
      const { plain } = s.lv;
      await s.lvchange('A', '-aey', plain);
      await s.open('A', plain);
      await s.lvchange('A', '-asy', plain);
      await s.expectHeld('A', plain, 'sh');
      // Still active and still open: the device was never torn down.
      await s.expectLvs('A', plain, OPEN);
      await s.lvchange('B', '-asy', plain);
      await s.lvchange('B', '-asy', plain);
      await s.expectHeld('B', plain, 'sh');
      await s.expectHeld('A', plain, 'sh');
      await s.expectLvs('B', plain, ACTIVE);
    });

    scenario('both hosts sh and open: ex is refused on each side, and -an of the open LV fails keeping the lock', async (s) => {
      const { plain } = s.lv;
      await s.lvchange('A', '-asy', plain);
      await s.lvchange('B', '-asy', plain);
      await s.open('A', plain);
      await s.open('B', plain);
      await s.lvchangeFails('B', ['-aey', plain], s.refusal(plain, 'A'));
      await s.lvchangeFails('A', ['-aey', plain], s.refusal(plain, 'B'));
      for (const host of ['A', 'B'] as const) {
        await s.expectHeld(host, plain, 'sh');
        await s.expectLvs(host, plain, OPEN);
      }
      await s.lvchangeFails('A', ['-an', plain], [`Logical volume ${plain} in use.`]);
      await s.expectHeld('A', plain, 'sh');
      await s.expectLvs('A', plain, OPEN);
    });

    scenario('sh converts to ex in place once the other host has released', async (s) => {
      const { plain } = s.lv;
      await s.lvchange('A', '-asy', plain);
      await s.lvchange('B', '-asy', plain);
      await s.open('B', plain);
      await s.lvchange('A', '-an', plain);
      assert.equal(await s.lockMode('A', plain), 'un');
      await s.lvchange('B', '-aey', plain);
      await s.expectHeld('B', plain, 'ex');
      await s.expectLvs('B', plain, OPEN);
      await s.expectLvs('A', plain, INACTIVE);
      await s.lvchangeFails('A', ['-asy', plain], s.refusal(plain, 'B'));
      await s.lvchangeFails('A', ['-aey', plain], s.refusal(plain, 'B'));
    });

    scenario('-an of an open ex LV fails "in use" and keeps ex; after close it releases and the other host can take it', async (s) => {
      const { plain } = s.lv;
      await s.lvchange('A', '-aey', plain);
      await s.open('A', plain);
      await s.lvchangeFails('A', ['-an', plain], [`Logical volume ${plain} in use.`]);
      await s.expectHeld('A', plain, 'ex');
      await s.lvchangeFails('B', ['-aey', plain], s.refusal(plain, 'A'));
      await s.close('A', plain);
      await s.lvchange('A', '-an', plain);
      assert.equal(await s.lockMode('A', plain), 'un');
      await s.expectLvs('A', plain, INACTIVE);
      await s.lvchange('B', '-aey', plain);
      await s.expectHeld('B', plain, 'ex');
    });

    scenario('asking again for the mode already held succeeds and changes nothing; -an of an inactive LV succeeds', async (s) => {
      const { plain } = s.lv;
      await s.lvchange('A', '-aey', plain);
      await s.lvchange('A', '-aey', plain);
      await s.lvchange('A', '-ay', plain);
      await s.expectHeld('A', plain, 'ex');
      await s.expectLvs('A', plain, ACTIVE);
      await s.lvchange('A', '-an', plain);
      await s.lvchange('A', '-an', plain);
      await s.lvchange('A', '-asy', plain);
      await s.lvchange('A', '-asy', plain);
      await s.expectHeld('A', plain, 'sh');
    });

    // Code-read (lvm2 lockd_lv, _lockd_lv_thin): a thin LV is locked through its pool, ex only,
    // and lvmlockd's messages name the pool.
    scenario('sh is refused for a thin LV; ex works, through the lock of its pool', async (s) => {
      const { thin } = s.lv;
      const pool = await s.poolOf(thin);
      await s.lvchangeFails('A', ['-asy', thin], [`Shared activation not compatible with LV type thin-pool of ${pool}`, `Failed to lock logical volume ${thin}.`]);
      await s.expectHeld('A', pool, undefined);
      await s.lvchange('A', '-aey', thin);
      await s.expectHeld('A', pool, 'ex');
      await s.lvchangeFails('B', ['-aey', thin], s.refusal(pool, 'A', thin));
      await s.lvchange('A', '-an', thin);
      await s.expectHeld('A', pool, undefined);
    });

    // Code-read (lvm2 lockd_vg, _access_vg_lock_type, lockd_lv_name): without its lockspace the
    // VG lock fails with ENOLS; activation needs it, deactivation reads the VG without it and
    // then fails only to unlock.
    scenario('a VG whose lockspace is stopped on B: B cannot activate, deactivation warns, A is unaffected', async (s) => {
      const { plain } = s.lv;
      const vg = s.vgOf(plain);
      await s.ok('B', 'vgchange', '--lockstop', vg);
      try {
        assert.ok(!(await s.lockctl('B')).some((l) => l.startsWith(`VG ${vg} `)), `B still lists the lockspace of ${vg}`);
        await s.lvchangeFails('B', ['-aey', plain], [`Cannot access VG ${vg} due to failed lock.`]);
        await s.lvchangeFails('B', ['-asy', plain], [`Cannot access VG ${vg} due to failed lock.`]);
        const off = await s.lvm('B', 'lvchange', '-an', plain);
        assert.equal(off.rc, 0, off.stderr);
        assert.equal(off.stderr, [`Reading VG ${vg} without a lock.`, `LV ${plain} lock failed: lockspace is inactive`, `Failed to unlock logical volume ${plain}.`].map((l) => `  ${l}\n`).join(''));
        await s.lvchange('A', '-aey', plain);
        await s.expectHeld('A', plain, 'ex');
      } finally {
        // Without udev the first lockstart on a host can fail once (testbed): retry once.
        const restart = await s.lvm('B', 'vgchange', '--lockstart', vg);
        if (restart.rc !== 0) await s.ok('B', 'vgchange', '--lockstart', vg);
      }
    });

    scenario('one lvchange naming two LVs: the refused one fails, the other is still done, exit 5', async (s) => {
      const { plain, plain2 } = s.lv;
      await s.lvchange('A', '-aey', plain);
      await s.lvchangeFails('B', ['-aey', plain, plain2], s.refusal(plain, 'A'));
      await s.expectHeld('B', plain2, 'ex');
      await s.expectHeld('B', plain, undefined);
      await s.expectLvs('B', plain2, ACTIVE);
      await s.expectLvs('B', plain, INACTIVE);
      // The same in the other argument order: lvm processes LVs in VG order, so the text is the same.
      await s.lvchange('B', '-an', plain2);
      await s.lvchangeFails('B', ['-aey', plain2, plain], s.refusal(plain, 'A'));
      await s.expectHeld('B', plain2, 'ex');
    });

    scenario('lvs --reportformat json prints exactly what lvm 2.03.16 prints (sh held, open)', async (s) => {
      const { plain } = s.lv;
      const name = plain.slice(plain.indexOf('/') + 1);
      await s.lvchange('A', '-asy', plain);
      await s.open('A', plain);
      const r = await s.ok('A', 'lvs', '--reportformat', 'json', '-o', 'lv_name,lv_attr,lv_active,lv_active_exclusively,lv_active_locally,lv_active_remotely', plain);
      assert.equal(
        r.stdout,
        [
          '  {',
          '      "report": [',
          '          {',
          '              "lv": [',
          `                  {"lv_name":"${name}", "lv_attr":"-wi-ao----", "lv_active":"active", "lv_active_exclusively":"active exclusively", "lv_active_locally":"active locally", "lv_active_remotely":""}`,
          '              ]',
          '          }',
          '      ]',
          '  }',
          '',
        ].join('\n'),
      );
    });

    scenario('lvmlockctl --info lists this host\'s lockspace and LV locks by dashed LV uuid', async (s) => {
      const { plain, plain2 } = s.lv;
      const vg = s.vgOf(plain);
      await s.lvchange('A', '-aey', plain);
      await s.lvchange('B', '-asy', plain2);
      const lines = await s.lockctl('A');
      const vgLine = lines.findIndex((l) => l.startsWith(`VG ${vg} lock_type=sanlock `));
      assert.ok(vgLine >= 0, lines.join('\n'));
      assert.equal(lines[vgLine + 1], `LS sanlock lvm_${vg}`);
      assert.match(lines[vgLine + 2], /^LK VG un ver \d+$/);
      assert.ok(lines.includes(`LK LV ex ${await s.uuid(plain)}`), lines.join('\n'));
      // Each host shows only its own locks: no host sees the other's.
      await s.expectHeld('A', plain2, undefined);
      assert.ok((await s.lockctl('B')).includes(`LK LV sh ${await s.uuid(plain2)}`));
      await s.expectHeld('B', plain, undefined);
    });
  });
}
