/**
 * The simulator as an LvmBackend for the LVM contract: a fresh two-host cluster in a temporary
 * directory. Commands run either in this process (fast, the same code path as the CLI after
 * argument handling) or as real processes through the bin/ wrappers.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandResult, Host, LvmBackend } from '../contract/lvm-contract.js';
import { runProgram } from './exec.js';
import { SIM_BIN_DIR } from './paths.js';
import { runTool, type SimContext } from './run.js';
import { DEFAULT_LOCK_TIMEOUT_MS } from './store.js';

export interface SimBackendOptions {
  /** 'in-process' (default) or 'process' (spawn bin/lvm, bin/lvmlockctl). */
  mode?: 'in-process' | 'process';
  /** Answer like lvm >= 2.03.33: refusals name the owner's host_id. */
  hostIdSuffix?: boolean;
}

export interface SimBackend extends LvmBackend {
  stateFile: string;
  dir: string;
  /** Runs the admin tool as a host. */
  admin(host: Host, ...args: string[]): Promise<CommandResult>;
}

const HOST_IDS: Record<Host, number> = { A: 1, B: 2 };
const PROCESS_TIMEOUT_MS = 20_000;
const LVM_SUBCOMMANDS = new Set(['lvchange', 'lvs', 'vgs', 'vgchange']);

export async function makeSimBackend(options: SimBackendOptions = {}): Promise<SimBackend> {
  const dir = await mkdtemp(join(tmpdir(), 'lvm-sim-'));
  const stateFile = join(dir, 'cluster.json');
  const context = (host: Host): SimContext => ({ stateFile, hostId: HOST_IDS[host], lockTimeoutMs: DEFAULT_LOCK_TIMEOUT_MS });

  /** ['lvm', 'lvchange', ...], ['lvmlockctl', ...], or a bare lvm command name as on a real host. */
  const run = async (host: Host, argv: string[]): Promise<CommandResult> => {
    const [first = '', ...rest] = argv;
    const [tool, args] = LVM_SUBCOMMANDS.has(first) ? ['lvm', argv] : [first, rest];
    if (options.mode !== 'process') return runTool(tool, args, context(host));
    const env = { ...process.env, LVMSIM_STATE: stateFile, LVMSIM_HOST_ID: String(HOST_IDS[host]) };
    const r = await runProgram(join(SIM_BIN_DIR, tool), args, { env, timeoutMs: PROCESS_TIMEOUT_MS });
    if (r.rc === null) throw new Error(`${tool} ${args.join(' ')} on host ${host} ended by ${r.signal}`);
    return { rc: r.rc, stdout: r.stdout, stderr: r.stderr };
  };

  const admin = async (host: Host, ...args: string[]): Promise<CommandResult> => {
    const r = await runTool('lvm-sim', args, context(host));
    if (r.rc !== 0) throw new Error(`lvm-sim ${args.join(' ')} as host ${host} failed (${r.rc}): ${r.stderr}`);
    return r;
  };

  try {
    await admin('A', 'init');
    await admin('A', 'create-vg', 'vg0', '--lock-type', 'sanlock');
    for (const lv of ['lv1', 'lv2']) await admin('A', 'create-lv', 'vg0', lv);
    await admin('A', 'create-lv', 'vg0', 'thin1', '--thin');
    // As on real lvm: creating a thin LV leaves its pool locked ex on the creator; the real
    // test bed releases it the same way before the contract runs.
    const off = await runTool('lvm', ['lvchange', '-an', 'vg0/pool0'], context('A'));
    if (off.rc !== 0) throw new Error(`lvchange -an vg0/pool0 failed: ${off.stderr}`);
    await admin('B', 'lockstart', 'vg0');
    if (options.hostIdSuffix) await admin('A', 'set', 'hostIdSuffix', 'true');
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    stateFile,
    dir,
    admin,
    run,
    open: async (host, lv) => void (await admin(host, 'open', lv)),
    close: async (host, lv) => void (await admin(host, 'close', lv)),
    dispose: () => rm(dir, { recursive: true, force: true }),
    lvs: { plain: 'vg0/lv1', plain2: 'vg0/lv2', thin: 'vg0/thin1' },
    hostIds: HOST_IDS,
    hostIdSuffix: options.hostIdSuffix ?? false,
  };
}
