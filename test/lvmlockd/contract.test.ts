/**
 * The backend-agnostic LVM contract against real lvm2 + lvmlockd + sanlock in two QEMU guests.
 * One test bed serves every scenario (setup takes about a minute); between scenarios it is reset:
 * holders closed, every LV deactivated on both hosts, lockspaces started.
 */
import { after } from 'node:test';
import { defineLvmContract, type LvmBackend } from '../contract/lvm-contract.js';
import { ioTimeoutFromEnv, prepare, say, skipLoudly } from './prepare.js';
import { HOST_IDS, Testbed } from './testbed.js';

const TITLE = 'real lvmlockd + sanlock (two QEMU guests)';
const prepared = await prepare();

if ('skip' in prepared) {
  skipLoudly(`LVM contract: ${TITLE}`, prepared.skip);
} else {
  let bed: Promise<Testbed> | undefined;
  let dirty = false;
  let version: string | undefined;
  const started = performance.now();

  const getBed = (): Promise<Testbed> =>
    (bed ??= Testbed.start(prepared.image, prepared.tools, { label: 'contract', ioTimeoutSec: ioTimeoutFromEnv(), log: say }).then(async (b) => {
      await b.reset();
      return b;
    }));

  /** lvm >= 2.03.33 names the lock owner in refusals; the guests run the host's lvm. */
  const versionOf = async (b: Testbed): Promise<string> => {
    const r = await b.must('A', ['lvm', 'version']);
    const m = /LVM version:\s+(\d+)\.(\d+)\.(\d+)/.exec(r.stdout);
    if (!m) throw new Error(`cannot read the lvm version from: ${r.stdout}`);
    return `${m[1]}.${m[2]}.${m[3]}`;
  };
  const atLeast = (v: string, min: number[]): boolean => {
    const parts = v.split('.').map(Number);
    for (let i = 0; i < min.length; i++) if ((parts[i] ?? 0) !== min[i]) return (parts[i] ?? 0) > min[i]!;
    return true;
  };

  after(async () => {
    if (!bed) return;
    const b = await bed.catch(() => undefined);
    if (!b) return;
    say(`contract: ${b.journal.length} guest commands in ${((performance.now() - started) / 1000).toFixed(0)} s; guest times by command:`);
    for (const line of b.summary()) say(`  ${line}`);
    await b.stop();
  });

  defineLvmContract(TITLE, async (): Promise<LvmBackend> => {
    const b = await getBed();
    if (dirty) {
      await b.reset();
      dirty = false;
    }
    version ??= await versionOf(b);
    return {
      run: async (host, argv) => {
        const r = await b.run(host, argv);
        return { rc: r.rc, stdout: r.stdout, stderr: r.stderr };
      },
      open: (host, lv) => b.open(host, lv),
      close: (host, lv) => b.close(host, lv),
      dispose: async () => {
        dirty = true;
        await b.reset();
        dirty = false;
      },
      lvs: { plain: `${b.layout.vg}/${b.layout.plain[0]}`, plain2: `${b.layout.vg}/${b.layout.plain[1]}`, thin: `${b.layout.vg}/${b.layout.thin[0]}` },
      hostIds: HOST_IDS,
      hostIdSuffix: atLeast(version, [2, 3, 33]),
    };
  });
}
