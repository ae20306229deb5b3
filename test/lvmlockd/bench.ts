/**
 * Lock-operation benchmark on real lvmlockd + sanlock (two QEMU TCG guests):
 *   node dist/test/lvmlockd/bench.js [--rounds N]
 *
 * Compares the daemon's way (one lvchange for all of a domain's LVs) with the old hook's way
 * (one lvchange per LV; at start -asy then -aey, at stop -an twice), and times ex->sh / sh->ex
 * conversions and refusals. Times are guest times of the lvchange commands (TCG: slower than a
 * real host, but the ratios are the point). LVMLOCKD_TESTBED_IO_TIMEOUT sets lvmlockd -o.
 */
import { ioTimeoutFromEnv, prepare, say } from './prepare.js';
import { Testbed, type Host } from './testbed.js';

const VG = 'vg0';
const LVS = ['lv1', 'lv2', 'lv3', 'lv4'];
const ref = (lv: string) => `${VG}/${lv}`;

interface Sample {
  guestMs: number;
  wallMs: number;
}

function roundsFromArgs(): number {
  const i = process.argv.indexOf('--rounds');
  const n = i >= 0 ? Number(process.argv[i + 1]) : 3;
  if (!Number.isInteger(n) || n < 1 || n > 50) throw new Error(`--rounds ${process.argv[i + 1]}: expected a whole number 1-50`);
  return n;
}

class Bench {
  readonly samples = new Map<string, Sample[]>();
  constructor(private readonly bed: Testbed) {}

  /** Runs one command; rc must be `want`. */
  async cmd(host: Host, args: string[], want = 0): Promise<Sample> {
    const r = await this.bed.run(host, ['lvchange', ...args]);
    if (r.rc !== want) throw new Error(`lvchange ${args.join(' ')} on ${host}: rc ${r.rc}, expected ${want}: ${r.stderr.trim()}`);
    return { guestMs: r.ms, wallMs: r.wallMs };
  }

  /** Times a sequence of commands as one operation (sum of their times). */
  async op(name: string, steps: Array<[Host, string[], number?]>): Promise<void> {
    let guestMs = 0;
    let wallMs = 0;
    for (const [host, args, want] of steps) {
      const s = await this.cmd(host, args, want ?? 0);
      guestMs += s.guestMs;
      wallMs += s.wallMs;
    }
    this.samples.set(name, [...(this.samples.get(name) ?? []), { guestMs, wallMs }]);
  }

  async round(): Promise<void> {
    const all = LVS.map(ref);
    // The daemon: one command per VG and transition.
    await this.op('daemon start: 1 x lvchange -aey (4 LVs)', [['A', ['-aey', ...all]]]);
    await this.op('daemon stop: 1 x lvchange -an (4 LVs)', [['A', ['-an', ...all]]]);
    // One command per LV.
    await this.op('4 x lvchange -aey (1 LV each)', all.map((lv) => ['A', ['-aey', lv]] as [Host, string[]]));
    await this.op('4 x lvchange -an (1 LV each)', all.map((lv) => ['A', ['-an', lv]] as [Host, string[]]));
    // The old hook: at start -asy then -aey per LV, at stop -an twice per LV.
    await this.op('old hook start: -asy then -aey per LV (8 commands)', all.flatMap((lv) => [['A', ['-asy', lv]], ['A', ['-aey', lv]]] as Array<[Host, string[]]>));
    await this.op('old hook stop: -an twice per LV (8 commands)', all.flatMap((lv) => [['A', ['-an', lv]], ['A', ['-an', lv]]] as Array<[Host, string[]]>));
    // Conversions in place, the LV open as under QEMU.
    await this.cmd('A', ['-aey', ref('lv1')]);
    await this.bed.open('A', ref('lv1'));
    await this.op('ex -> sh, 1 LV (open)', [['A', ['-asy', ref('lv1')]]]);
    await this.op('sh -> ex, 1 LV (open)', [['A', ['-aey', ref('lv1')]]]);
    await this.bed.close('A', ref('lv1'));
    await this.cmd('A', ['-aey', ...all]);
    await this.op('ex -> sh, 4 LVs in 1 command', [['A', ['-asy', ...all]]]);
    await this.op('sh -> ex, 4 LVs in 1 command', [['A', ['-aey', ...all]]]);
    // Refusals: A holds ex.
    await this.op('refused -aey (other host holds ex)', [['B', ['-aey', ref('lv1')], 5]]);
    await this.op('refused -asy (other host holds ex)', [['B', ['-asy', ref('lv1')], 5]]);
    await this.op('refused -aey, 4 LVs in 1 command', [['B', ['-aey', ...all], 5]]);
    await this.bed.open('A', ref('lv1'));
    await this.op('refused -an (LV open here: "in use")', [['A', ['-an', ref('lv1')], 5]]);
    await this.bed.close('A', ref('lv1'));
    await this.cmd('A', ['-an', ...all]);
  }

  table(): string[] {
    const stat = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      return { min: s[0]!, med: s[Math.floor((s.length - 1) / 2)]!, max: s.at(-1)! };
    };
    const sec = (ms: number) => (ms / 1000).toFixed(2).padStart(6);
    const lines = [`${'operation'.padEnd(52)} guest s: min    median  max   | host s median`];
    for (const [name, samples] of this.samples) {
      const g = stat(samples.map((s) => s.guestMs));
      const w = stat(samples.map((s) => s.wallMs));
      lines.push(`${name.padEnd(52)}          ${sec(g.min)} ${sec(g.med)} ${sec(g.max)} | ${sec(w.med)}`);
    }
    return lines;
  }
}

async function main(): Promise<number> {
  const rounds = roundsFromArgs();
  const prepared = await prepare();
  if ('skip' in prepared) {
    say(`benchmark NOT RUN: ${prepared.skip}`);
    return 2;
  }
  const bed = await Testbed.start(prepared.image, prepared.tools, {
    label: 'bench',
    ioTimeoutSec: ioTimeoutFromEnv(),
    layout: { vg: VG, plain: LVS, thin: [] },
    log: say,
  });
  try {
    const bench = new Bench(bed);
    for (let i = 1; i <= rounds; i++) {
      const t = performance.now();
      await bench.round();
      say(`round ${i}/${rounds}: ${((performance.now() - t) / 1000).toFixed(1)} s`);
    }
    const io = ioTimeoutFromEnv();
    console.log(`\nlvmlockd + sanlock lock operations, ${rounds} rounds, 2 TCG guests, lvmlockd -o ${io ?? 'default (10)'}`);
    console.log(`boot ${((bed.timings.bootMs ?? 0) / 1000).toFixed(1)} s, setup ${((bed.timings.setupMs ?? 0) / 1000).toFixed(1)} s`);
    for (const line of bench.table()) console.log(line);
    return 0;
  } finally {
    await bed.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`benchmark failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
