/**
 * `lvm-sim`: sets up and drives the simulated cluster for tests and the demo. It does what an
 * administrator or the hardware would: create VGs and LVs, start lockspaces, open devices the
 * way QEMU does, crash hosts, tune the simulator.
 */
import { activeLvsOn, AdminError, closeLv, createLv, createVg, killHost, openLv, reviveHost, startLockspace, stopLockspace } from './model.js';
import { resolveLvArg } from './names.js';
import { Output, SIM_SETUP_ERROR, type ToolResult } from './output.js';
import { emptyState, findLv, findVg, isHostDead, isShared, SIM_TOOLS, type SimSettings, type SimState, type SimTool, type VgLockType } from './state.js';
import { readState, withStateLock, writeState } from './store.js';

/** Where and as whom the admin tool runs. */
export interface AdminContext {
  stateFile: string;
  hostId: number;
  lockTimeoutMs: number;
  signal?: AbortSignal;
}

const USAGE_ERROR = 2;

export const ADMIN_USAGE = `usage: lvm-sim COMMAND [ARGS]   (env: LVMSIM_STATE=FILE, LVMSIM_HOST_ID=N, LVMSIM_LOG=FILE)
  init                              new empty cluster state in LVMSIM_STATE
  create-vg VG --lock-type sanlock|dlm|none [--size MiB]
                                    like vgcreate: a shared VG starts its lockspace on this host
  create-lv VG LV [--thin [--pool POOL]] [--size MiB]
                                    like lvcreate -an (a thin LV creates its pool, default pool0)
  create-lvs VG PREFIX COUNT        COUNT plain LVs named PREFIX0.. (for scale tests)
  lockstart VG | lockstop VG        this host joins / leaves the VG lockspace
  open VG/LV | close VG/LV          a process on this host opens / closes the LV (like QEMU)
  set KEY JSON                      delays {"lvchange":ms,...} | hang ["lvchange",...]
                                    | hostIdSuffix true|false | leaseExpiryMs ms
  kill-host N                       host N crashes: its commands fail, its leases expire
                                    after leaseExpiryMs
  revive-host N                     host N rebooted: no lockspace, lock or active LV left
  dump                              print the whole state as JSON`;

class UsageError extends Error {}

const lockOptions = (ctx: AdminContext) => ({ timeoutMs: ctx.lockTimeoutMs, signal: ctx.signal });

export async function runAdmin(argv: string[], ctx: AdminContext): Promise<ToolResult> {
  const out = new Output();
  const [command, ...args] = argv;
  try {
    switch (command) {
      case undefined:
        throw new UsageError('a command is required');
      case 'help':
      case '--help':
      case '-h':
        out.line(ADMIN_USAGE);
        return out.result(0);
      case 'init':
        expectArgs(command, args, 0);
        await withStateLock(ctx.stateFile, lockOptions(ctx), () => writeState(ctx.stateFile, emptyState()));
        out.line(`initialised an empty cluster state in ${ctx.stateFile}`);
        return out.result(0);
      case 'dump':
        expectArgs(command, args, 0);
        out.line(JSON.stringify(readState(ctx.stateFile), null, 2));
        return out.result(0);
      default: {
        const action = ACTIONS[command];
        if (!action) throw new UsageError(`unknown command "${command}"`);
        const message = await mutate(ctx, (state) => action(state, args, ctx.hostId));
        out.line(message);
        return out.result(0);
      }
    }
  } catch (err) {
    if (err instanceof UsageError) {
      out.rawError(`lvm-sim: ${err.message}`);
      out.rawError(ADMIN_USAGE);
      return out.result(USAGE_ERROR);
    }
    if (err instanceof AdminError) {
      out.rawError(`lvm-sim ${command}: ${err.message}`);
      return out.result(SIM_SETUP_ERROR);
    }
    throw err;
  }
}

async function mutate(ctx: AdminContext, change: (state: SimState) => string): Promise<string> {
  return withStateLock(ctx.stateFile, lockOptions(ctx), () => {
    const state = readState(ctx.stateFile);
    const message = change(state);
    writeState(ctx.stateFile, state);
    return message;
  });
}

type Action = (state: SimState, args: string[], hostId: number) => string;

const ACTIONS: Record<string, Action> = {
  'create-vg': (state, args, hostId) => {
    const { positional, options } = splitOptions('create-vg', args, ['--lock-type', '--size'], []);
    expectArgs('create-vg', positional, 1);
    const lockType = options.get('--lock-type');
    if (lockType !== 'sanlock' && lockType !== 'dlm' && lockType !== 'none') {
      throw new UsageError('create-vg needs --lock-type sanlock, dlm or none');
    }
    requireAlive(state, hostId, 'create a shared VG');
    const vg = createVg(state, positional[0], lockType as VgLockType, hostId, sizeOption(options));
    return isShared(vg) ? `created VG ${vg.name} (${lockType}); lockspace started on host ${hostId}` : `created VG ${vg.name} (no lvmlockd)`;
  },
  'create-lv': (state, args, hostId) => {
    const { positional, options, flags } = splitOptions('create-lv', args, ['--pool', '--size'], ['--thin']);
    expectArgs('create-lv', positional, 2);
    if (options.has('--pool') && !flags.has('--thin')) throw new UsageError('--pool goes with --thin');
    const lv = createLv(state, positional[0], positional[1], { thin: flags.has('--thin'), pool: options.get('--pool'), sizeMiB: sizeOption(options) }, hostId);
    return `created LV ${positional[0]}/${lv.name} (${lv.segtype}${lv.pool ? ` in ${lv.pool}` : ''})`;
  },
  'create-lvs': (state, args, hostId) => {
    // Many plain LVs in one call, for scale tests (one process per LV would dominate their time).
    expectArgs('create-lvs', args, 3);
    const [vg, prefix, countText] = args;
    const count = Number(countText);
    if (!Number.isInteger(count) || count < 1 || count > 100_000) throw new UsageError(`create-lvs: COUNT must be 1..100000, not ${countText}`);
    for (let i = 0; i < count; i++) createLv(state, vg, `${prefix}${i}`, { thin: false, pool: undefined, sizeMiB: undefined }, hostId);
    return `created ${count} LVs ${vg}/${prefix}0..${prefix}${count - 1}`;
  },
  lockstart: (state, args, hostId) => {
    expectArgs('lockstart', args, 1);
    requireAlive(state, hostId, 'start a lockspace');
    const vg = sharedVg(state, args[0]);
    return startLockspace(state, vg, hostId) ? `lockspace of ${vg.name} started on host ${hostId}` : `lockspace of ${vg.name} was already started on host ${hostId}`;
  },
  lockstop: (state, args, hostId) => {
    expectArgs('lockstop', args, 1);
    requireAlive(state, hostId, 'stop a lockspace');
    const vg = sharedVg(state, args[0]);
    const result = stopLockspace(vg, hostId);
    if (result === 'busy') {
      const active = activeLvsOn(vg, hostId).map((lv) => `${vg.name}/${lv.name}`);
      throw new AdminError(`cannot stop the lockspace of ${vg.name} on host ${hostId}: LVs are active here (${active.join(', ')})`);
    }
    return result === 'stopped' ? `lockspace of ${vg.name} stopped on host ${hostId}` : `lockspace of ${vg.name} was not started on host ${hostId}`;
  },
  open: (state, args, hostId) => {
    expectArgs('open', args, 1);
    requireAlive(state, hostId, 'open an LV');
    const { vg, lv } = existingLv(state, args[0]);
    openLv(vg, lv, hostId);
    return `${vg.name}/${lv.name} open on host ${hostId} (count ${lv.open[String(hostId)]})`;
  },
  close: (state, args, hostId) => {
    expectArgs('close', args, 1);
    requireAlive(state, hostId, 'close an LV');
    const { vg, lv } = existingLv(state, args[0]);
    closeLv(vg, lv, hostId);
    return `${vg.name}/${lv.name} closed on host ${hostId} (count ${lv.open[String(hostId)] ?? 0})`;
  },
  set: (state, args) => {
    expectArgs('set', args, 2);
    const [key, json] = args;
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch {
      throw new UsageError(`set ${key}: ${json} is not JSON`);
    }
    applySetting(state.settings, key, value);
    return `${key} = ${JSON.stringify(value)}`;
  },
  'kill-host': (state, args) => {
    expectArgs('kill-host', args, 1);
    const id = hostIdArg(args[0]);
    killHost(state, id, Date.now());
    return `host ${id} crashed; its leases expire after ${state.settings.leaseExpiryMs} ms`;
  },
  'revive-host': (state, args) => {
    expectArgs('revive-host', args, 1);
    const id = hostIdArg(args[0]);
    reviveHost(state, id);
    return `host ${id} is up again, with no lockspace, lock or active LV`;
  },
};

function applySetting(settings: SimSettings, key: string, value: unknown): void {
  const isMs = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;
  const isTool = (v: unknown): v is SimTool => typeof v === 'string' && (SIM_TOOLS as readonly string[]).includes(v);
  const tools = SIM_TOOLS.join(', ');
  switch (key) {
    case 'delays':
      if (!value || typeof value !== 'object' || Array.isArray(value) || !Object.entries(value).every(([k, v]) => isTool(k) && isMs(v))) {
        throw new UsageError(`set delays: expected an object of milliseconds keyed by ${tools}`);
      }
      settings.delays = value as SimSettings['delays'];
      return;
    case 'hang':
      if (!Array.isArray(value) || !value.every(isTool)) throw new UsageError(`set hang: expected an array of ${tools}`);
      settings.hang = value;
      return;
    case 'hostIdSuffix':
      if (typeof value !== 'boolean') throw new UsageError('set hostIdSuffix: expected true or false');
      settings.hostIdSuffix = value;
      return;
    case 'leaseExpiryMs':
      if (!isMs(value)) throw new UsageError('set leaseExpiryMs: expected milliseconds (a number >= 0)');
      settings.leaseExpiryMs = value;
      return;
    default:
      throw new UsageError(`set: unknown setting "${key}" (known: delays, hang, hostIdSuffix, leaseExpiryMs)`);
  }
}

function expectArgs(command: string, args: string[], count: number): void {
  if (args.length !== count) throw new UsageError(`${command} takes ${count} argument${count === 1 ? '' : 's'}, got ${args.length}`);
}

function splitOptions(command: string, args: string[], valued: string[], flags: string[]) {
  const positional: string[] = [];
  const options = new Map<string, string>();
  const seen = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (valued.includes(arg)) {
      if (i + 1 >= args.length) throw new UsageError(`${command}: ${arg} needs a value`);
      options.set(arg, args[++i]);
    } else if (flags.includes(arg)) {
      seen.add(arg);
    } else if (arg.startsWith('--')) {
      throw new UsageError(`${command}: unknown option ${arg}`);
    } else {
      positional.push(arg);
    }
  }
  return { positional, options, flags: seen };
}

function sizeOption(options: Map<string, string>): number | undefined {
  const size = options.get('--size');
  if (size === undefined) return undefined;
  if (!/^[1-9]\d*$/.test(size)) throw new UsageError(`--size ${size}: expected a whole number of MiB`);
  return Number(size);
}

function hostIdArg(text: string): number {
  const id = Number(text);
  if (!Number.isInteger(id) || id < 1 || id > 2000) throw new UsageError(`host id "${text}" is not an integer 1..2000`);
  return id;
}

function requireAlive(state: SimState, hostId: number, what: string): void {
  if (isHostDead(state, hostId)) throw new AdminError(`host ${hostId} has crashed (kill-host) and cannot ${what}`);
}

function sharedVg(state: SimState, name: string) {
  const vg = findVg(state, name);
  if (!vg) throw new AdminError(`VG ${name} does not exist`);
  if (!isShared(vg)) throw new AdminError(`VG ${name} has lock type none: it has no lockspace`);
  return vg;
}

function existingLv(state: SimState, arg: string) {
  const ref = resolveLvArg(state, arg);
  const vg = findVg(state, ref.vg);
  const lv = vg && ref.lv !== undefined ? findLv(vg, ref.lv) : undefined;
  if (!vg || !lv) throw new AdminError(`LV ${arg} does not exist`);
  return { vg, lv };
}
