/**
 * One simulated invocation of `lvm`, `lvmlockctl` or `lvm-sim`, from argument vector to exit
 * code and output. The CLI (main.ts) and in-process test backends both come through here.
 */
import { appendFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { runAdmin, type AdminContext } from './admin.js';
import { lvmlockctl } from './lockctl.js';
import { lvchange } from './lvchange.js';
import { CommandLineError, PARSE_FAILED } from './options.js';
import { ECMD_FAILED, EINVALID_CMD_LINE, Output, SIM_SETUP_ERROR, type ToolResult } from './output.js';
import { lvs, vgs } from './reporting.js';
import { isHostDead, SimStateError, type SimState, type SimTool } from './state.js';
import { readState, SimLockError, withStateLock, writeState } from './store.js';
import { vgchange } from './vgchange.js';
import type { LvmContext } from './vg-access.js';

export interface SimContext extends AdminContext {
  /** Append one JSON line per invocation here (LVMSIM_LOG). */
  logFile?: string;
  /** When the invocation started (epoch ms); defaults to the call time. */
  startMs?: number;
}

const LVM_COMMANDS: Record<Exclude<SimTool, 'lvmlockctl'>, (ctx: LvmContext, argv: string[]) => number> = { lvchange, lvs, vgs, vgchange };
/** Commands that change the cluster and so run under the state lock. */
const MUTATING = new Set<SimTool>(['lvchange', 'vgchange']);

/** `lvm version` of Debian 12's lvm2. */
const LVM_VERSION = ['  LVM version:     2.03.16(2) (2022-05-18)', '  Library version: 1.02.185 (2022-05-18)', '  Driver version:  4.48.0'];

export async function runTool(tool: string, argv: string[], ctx: SimContext): Promise<ToolResult> {
  const startMs = ctx.startMs ?? Date.now();
  let result: ToolResult;
  try {
    result = await dispatch(tool, argv, ctx);
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    const out = new Output();
    if (err instanceof SimStateError || err instanceof SimLockError) out.rawError(`lvm-sim: ${err.message}`);
    else out.rawError(`lvm-sim: internal error in ${tool} ${argv.join(' ')}: ${(err as Error).stack ?? String(err)}`);
    result = out.result(SIM_SETUP_ERROR);
  }
  if (ctx.logFile) {
    const entry = { host: ctx.hostId, tool, argv, rc: result.rc, startMs, endMs: Date.now() };
    appendFileSync(ctx.logFile, `${JSON.stringify(entry)}\n`);
  }
  return result;
}

function dispatch(tool: string, argv: string[], ctx: SimContext): Promise<ToolResult> {
  if (tool === 'lvm-sim') return runAdmin(argv, ctx);
  if (tool === 'lvmlockctl') return runLvmCommand('lvmlockctl', argv, ctx);
  if (tool in LVM_COMMANDS) return runLvmCommand(tool as SimTool, argv, ctx);
  if (tool !== 'lvm') return Promise.resolve(simError(`unknown tool "${tool}" (known: lvm, lvmlockctl, lvm-sim)`, SIM_SETUP_ERROR));
  const [command, ...rest] = argv;
  if (command === 'version') {
    const out = new Output();
    for (const line of LVM_VERSION) out.line(line);
    return Promise.resolve(out.result(0));
  }
  if (command !== undefined && command in LVM_COMMANDS) return runLvmCommand(command as SimTool, rest, ctx);
  const what = command === undefined ? 'lvm needs a command' : `lvm ${command} is not simulated`;
  return Promise.resolve(simError(`${what} (simulated: ${Object.keys(LVM_COMMANDS).join(', ')}, version)`, EINVALID_CMD_LINE));
}

function simError(message: string, rc: number): ToolResult {
  const out = new Output();
  out.rawError(`lvm-sim: ${message}`);
  return out.result(rc);
}

function deadHostError(ctx: SimContext, command: string): ToolResult {
  return simError(`host ${ctx.hostId} has crashed (lvm-sim kill-host ${ctx.hostId}): it cannot run ${command} until "lvm-sim revive-host ${ctx.hostId}"`, ECMD_FAILED);
}

async function runLvmCommand(command: SimTool, argv: string[], ctx: SimContext): Promise<ToolResult> {
  // Read without the lock: writers replace the file atomically, and a hung command must not hold it.
  const before = readState(ctx.stateFile);
  if (isHostDead(before, ctx.hostId)) return deadHostError(ctx, command);
  if (before.settings.hang.includes(command)) await hangUntilAborted(ctx.signal);
  const delay = before.settings.delays[command] ?? 0;
  if (delay > 0) await sleep(delay, undefined, { signal: ctx.signal });

  const body = command === 'lvmlockctl' ? lvmlockctl : LVM_COMMANDS[command];
  const run = (state: SimState): ToolResult => {
    if (isHostDead(state, ctx.hostId)) return deadHostError(ctx, command);
    return runBody(body, { state, hostId: ctx.hostId, nowMs: Date.now(), out: new Output() }, argv);
  };
  if (!MUTATING.has(command)) return run(readState(ctx.stateFile));
  return withStateLock(ctx.stateFile, { timeoutMs: ctx.lockTimeoutMs, signal: ctx.signal }, () => {
    const state = readState(ctx.stateFile);
    const original = JSON.stringify(state);
    const result = run(state);
    if (JSON.stringify(state) !== original) writeState(ctx.stateFile, state);
    return result;
  });
}

/** The "hang" switch: sleep until a signal ends the process (or the in-process caller aborts). */
function hangUntilAborted(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((_resolve, reject) => {
    // The interval keeps a CLI process alive; SIGTERM/SIGKILL end it as usual.
    const keepAlive = setInterval(() => undefined, 1 << 30);
    signal?.addEventListener('abort', () => {
      clearInterval(keepAlive);
      reject(signal.reason instanceof Error ? signal.reason : Object.assign(new Error('aborted'), { name: 'AbortError' }));
    }, { once: true });
  });
}

/** Runs one command body on a state; a command line lvm would reject ends as lvm ends it. */
export function runBody(body: (ctx: LvmContext, argv: string[]) => number, ctx: LvmContext, argv: string[]): ToolResult {
  const { out } = ctx;
  try {
    return out.result(body(ctx, argv));
  } catch (err) {
    if (!(err instanceof CommandLineError)) throw err;
    if (err.getoptLine) out.rawError(err.getoptLine);
    if (err.lvmLine) out.error(err.lvmLine);
    out.error(PARSE_FAILED);
    return out.result(EINVALID_CMD_LINE);
  }
}
