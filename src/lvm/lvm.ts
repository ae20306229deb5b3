import { lvKey, type LockMode, type LvRef, type TargetMode } from '../locks/lv.js';
import { classifyFailure, type LvFailure } from './errors.js';
import { Limiter } from './limiter.js';
import { runCommand, type Exec, type RunResult } from './run.js';

export interface LvmSettings {
  /** The lvm binary; every LVM command runs as `lvm <subcommand> ...`. */
  command: string;
  /** The lvmlockctl binary. */
  lockctl: string;
  timeoutMs: number;
  maxParallel: number;
}

export interface ChangeResult {
  ok: boolean;
  argv: string[];
  rc: number | null;
  ms: number;
  failures: LvFailure[];
  stderr: string;
}

export interface VgInfo {
  name: string;
  /** sanlock, dlm, none, or '' for a VG without a lock type. */
  lockType: string;
}

export interface LvInfo {
  vg: string;
  lv: string;
  /** Dashed form, as `lvs -o lv_uuid` prints it and lvmlockctl names the LV lock. */
  uuid: string;
  activeLocally: boolean;
  segtype: string;
}

/** Lock types whose VGs lvmlockd manages; LVs of other VGs ("none", "", local VGs) are not ours. */
const SHARED_LOCK_TYPES = new Set(['sanlock', 'dlm']);

export function isSharedLockType(lockType: string): boolean {
  return SHARED_LOCK_TYPES.has(lockType);
}

/** A read command (lvs, vgs, lvmlockctl) failed, timed out, or printed something unreadable. */
/** lvchange requests of one VG and mode waiting for the same LVM slot. */
interface Batch {
  vg: string;
  flag: string;
  refs: LvRef[];
  done?: Promise<{ run: RunResult; argv: string[]; batchRefs: LvRef[] }>;
}

export class LvmCommandError extends Error {
  override readonly name = 'LvmCommandError';
  constructor(
    /** The command as run, e.g. "lvm lvs" or "lvmlockctl --info". */
    readonly command: string,
    reason: string,
    readonly result?: RunResult,
  ) {
    super(`${command}: ${reason}`);
  }
}

/** A VG or LV name (or a path) that LVM would not accept; nothing was run. */
export class LvmNameError extends Error {
  override readonly name = 'LvmNameError';
}

/** lvm2 NAME_LEN is 128 including the terminating NUL. */
const MAX_NAME_LENGTH = 127;

/**
 * Throws unless `name` is a name LVM accepts (lib/misc/lvm-string.c validate_name): letters, digits
 * and "+_.-", not starting with "-", not "." or "..". Checked before any command is built, so a name
 * can never turn into an option or a second argument.
 */
export function validateLvmName(kind: 'VG' | 'LV', name: string): void {
  const reason =
    typeof name !== 'string' || name.length === 0
      ? 'it is empty'
      : name.length > MAX_NAME_LENGTH
        ? `it is longer than ${MAX_NAME_LENGTH} characters`
        : name.startsWith('-')
          ? 'it starts with "-"'
          : name === '.' || name === '..'
            ? 'it is "." or ".."'
            : !/^[A-Za-z0-9+_.-]+$/.test(name)
              ? 'LVM names use only letters, digits and "+_.-"'
              : undefined;
  if (reason !== undefined) {
    throw new LvmNameError(`invalid ${kind} name ${JSON.stringify(name)}: ${reason}`);
  }
}

const ACTIVATION_FLAG: Record<TargetMode, string> = { ex: '-aey', sh: '-asy', off: '-an' };

/** 32 characters without dashes, as LVM stores it; printed 6-4-4-4-4-4-6. */
const UUID_GROUPS = [6, 4, 4, 4, 4, 4, 6];

/** The dashed form of an LV UUID, whichever form it came in. */
export function dashedUuid(uuid: string): string {
  const bare = uuid.replace(/-/g, '');
  if (bare.length !== 32) return uuid;
  const parts: string[] = [];
  let at = 0;
  for (const n of UUID_GROUPS) {
    parts.push(bare.slice(at, at + n));
    at += n;
  }
  return parts.join('-');
}

function formatSeconds(ms: number): string {
  return `${Math.round(ms / 100) / 10}s`;
}

function firstErrorLine(stderr: string): string | undefined {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  return lines.find((l) => !/^WARNING:/i.test(l)) ?? lines[0];
}

function quote(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return JSON.stringify(flat.length > 200 ? `${flat.slice(0, 200)}...` : flat);
}

type Row = Record<string, unknown>;

/** Rows of one section of `--reportformat json` output: {"report":[{"lv":[{...}]}]}. */
function parseReport(command: string, stdout: string, section: 'vg' | 'lv'): Row[] {
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch {
    // Tolerate stray text around the document; the document itself must still be valid JSON.
    const start = stdout.indexOf('{');
    const end = stdout.lastIndexOf('}');
    try {
      doc = start >= 0 && end > start ? JSON.parse(stdout.slice(start, end + 1)) : undefined;
    } catch {
      doc = undefined;
    }
    if (doc === undefined) {
      throw new LvmCommandError(command, `output is not a JSON report: ${quote(stdout)}`);
    }
  }
  const report = (doc as { report?: unknown } | null)?.report;
  if (!Array.isArray(report)) {
    throw new LvmCommandError(command, `JSON output has no "report" list: ${quote(stdout)}`);
  }
  const rows: Row[] = [];
  for (const part of report) {
    const list = (part as Record<string, unknown> | null)?.[section];
    if (list === undefined) continue; // e.g. a "log" section
    if (!Array.isArray(list)) {
      throw new LvmCommandError(command, `JSON report section "${section}" is not a list: ${quote(stdout)}`);
    }
    for (const row of list) {
      if (typeof row !== 'object' || row === null || Array.isArray(row)) {
        throw new LvmCommandError(command, `JSON report row is not an object: ${quote(JSON.stringify(row))}`);
      }
      rows.push(row as Row);
    }
  }
  return rows;
}

function field(command: string, row: Row, name: string, required: boolean): string {
  const value = row[name];
  if (typeof value === 'string' && (value.length > 0 || !required)) return value;
  if (value === undefined && !required) return '';
  throw new LvmCommandError(command, `JSON report row lacks a usable "${name}": ${quote(JSON.stringify(row))}`);
}

function activeFlag(command: string, row: Row): boolean {
  const value = field(command, row, 'lv_active_locally', false);
  if (value === 'active locally' || value === '1') return true;
  if (value === '' || value === '0') return false;
  throw new LvmCommandError(command, `unexpected lv_active_locally value ${quote(value)}`);
}

type LockctlMode = 'ex' | 'sh' | 'un';
const MODE_RANK: Record<LockctlMode, number> = { un: 0, sh: 1, ex: 2 };

/** stderr lines of `lvs PATH` that mean "this path is not an LV" rather than "LVM is in trouble". */
const NOT_AN_LV = [
  /^Volume group ".*" not found/,
  /^Cannot process volume group /,
  /^Failed to find logical volume /,
  /Invalid path for Logical Volume/,
  /^Path required for Logical Volume/,
  /Couldn't split up device name/,
  /^Invalid (volume group|logical volume|VG|LV)? ?name/i,
];

/** Whether LVM's answer for `path` really is the LV the path names, not e.g. the only LV of a VG path. */
function pathNames(path: string, ref: LvRef): boolean {
  const clean = path.replace(/\/{2,}/g, '/');
  if (clean.endsWith(`/${ref.vg}/${ref.lv}`)) return true;
  const dmName = `${ref.vg.replace(/-/g, '--')}-${ref.lv.replace(/-/g, '--')}`;
  return clean.endsWith(`/mapper/${dmName}`);
}

/** The only module that runs LVM commands: activation changes and the state read back. */
/** Tries of `lvmlockctl --info` while another lvmlockctl holds its dump socket. */
const LOCKCTL_TRIES = 5;

export class Lvm {
  readonly limiter: Limiter;

  constructor(
    private readonly settings: () => LvmSettings,
    private readonly exec: Exec = runCommand,
  ) {
    this.limiter = new Limiter(() => this.settings().maxParallel);
  }

  private readonly openBatches = new Map<string, Batch>();

  /**
   * ONE `lvm lvchange -aey|-asy|-an VG/LV...` for all the given LVs of one VG. Never throws for an
   * LVM failure: the result says which LVs failed and why. Throws for a programming error (no LVs,
   * an invalid name) before running anything.
   */
  async change(vg: string, lvs: string[], target: TargetMode): Promise<ChangeResult> {
    if (!Array.isArray(lvs) || lvs.length === 0) {
      throw new Error(`Lvm.change: no LV given for volume group ${JSON.stringify(vg)}; a change needs at least one LV`);
    }
    const flag = ACTIVATION_FLAG[target];
    if (flag === undefined) throw new Error(`Lvm.change: unknown target mode ${JSON.stringify(target)}`);
    validateLvmName('VG', vg);
    for (const lv of lvs) validateLvmName('LV', lv);

    const refs: LvRef[] = [...new Set(lvs)].map((lv) => ({ vg, lv }));
    // Requests for the same VG and mode that wait for a free LVM slot are merged into one
    // lvchange: in a boot storm a few processes serve hundreds of starts. Callers hold their LVs'
    // mutexes, so merged requests never name the same LV.
    const key = `${vg}\u0000${flag}`;
    let batch = this.openBatches.get(key);
    if (!batch) {
      batch = { vg, flag, refs: [] };
      this.openBatches.set(key, batch);
      batch.done = this.runBatch(key, batch);
    }
    batch.refs.push(...refs);
    const { run, argv, batchRefs } = await batch.done!;
    const mine = new Set(refs.map(lvKey));
    const failures = classifyFailure(run, batchRefs).filter((f) => f.lv === undefined || mine.has(lvKey(f.lv)));
    return { ok: failures.length === 0, argv, rc: run.rc, ms: run.ms, failures, stderr: run.stderr };
  }

  private async runBatch(key: string, batch: Batch): Promise<{ run: RunResult; argv: string[]; batchRefs: LvRef[] }> {
    // Let the caller that opened the batch add its LVs before a free slot closes it.
    await Promise.resolve();
    return this.limiter.run(async () => {
      this.openBatches.delete(key);
      const batchRefs = [...new Map(batch.refs.map((r) => [lvKey(r), r])).values()];
      const args = ['lvchange', batch.flag, ...batchRefs.map(lvKey)];
      const s = this.settings();
      const run = await this.exec(s.command, args, { timeoutMs: s.timeoutMs });
      return { run, argv: [s.command, ...args], batchRefs };
    });
  }

  /** `lvm vgs --reportformat json -o vg_name,vg_lock_type` */
  async listVgs(): Promise<VgInfo[]> {
    const { label, stdout } = await this.read('lvm', ['vgs', '--reportformat', 'json', '-o', 'vg_name,vg_lock_type']);
    return parseReport(label, stdout, 'vg').map((row) => {
      const name = field(label, row, 'vg_name', true);
      return { name, lockType: field(label, row, 'vg_lock_type', false) };
    });
  }

  /** `lvm lvs --reportformat json -o vg_name,lv_name,lv_uuid,lv_active_locally,segtype VG...` */
  async listLvs(vgs: string[]): Promise<LvInfo[]> {
    // lvs without a VG would list every VG on the host: an empty request has an empty answer.
    if (vgs.length === 0) return [];
    for (const vg of vgs) validateLvmName('VG', vg);
    const { label, stdout } = await this.read('lvm', [
      'lvs',
      '--reportformat',
      'json',
      '-o',
      'vg_name,lv_name,lv_uuid,lv_active_locally,segtype',
      ...new Set(vgs),
    ]);
    return parseReport(label, stdout, 'lv').map((row) => ({
      vg: field(label, row, 'vg_name', true),
      lv: field(label, row, 'lv_name', true),
      uuid: dashedUuid(field(label, row, 'lv_uuid', true)),
      activeLocally: activeFlag(label, row),
      segtype: field(label, row, 'segtype', false),
    }));
  }

  /**
   * LV lock modes this host holds in lvmlockd, by dashed LV UUID, from the `LK LV <mode> <uuid>`
   * lines of `lvmlockctl --info`. An LV without a line was never locked here. Throws when lvmlockd
   * cannot be asked: an empty map would read as "no locks" and mislead a reconcile.
   */
  async lockModes(): Promise<Map<string, LockctlMode>> {
    const { label, stdout } = await this.readLockctlInfo();
    const modes = new Map<string, LockctlMode>();
    for (const raw of stdout.split('\n')) {
      const words = raw.trim().split(/\s+/);
      if (words[0] !== 'LK' || words[1] !== 'LV') continue;
      const [, , rawMode, uuid] = words;
      if (!rawMode || !uuid) throw new LvmCommandError(label, `cannot read lock line ${quote(raw)}`);
      // "nl" (null lock) holds nothing, like "un".
      const mode: LockctlMode | undefined =
        rawMode === 'ex' || rawMode === 'sh' || rawMode === 'un' ? rawMode : rawMode === 'nl' ? 'un' : undefined;
      if (mode === undefined) throw new LvmCommandError(label, `unknown lock mode in line ${quote(raw)}`);
      const key = dashedUuid(uuid);
      const before = modes.get(key);
      if (before === undefined || MODE_RANK[mode] > MODE_RANK[before]) modes.set(key, mode);
    }
    return modes;
  }

  /**
   * This host's held LV locks in the given VGs, by "vg/lv". Names come from lvs, modes from
   * lvmlockctl, because lvs cannot tell sh from ex on lvm up to 2.03.17 (lv_active_exclusively reads
   * "active exclusively" under a sh lock too).
   */
  async heldLocks(vgs: string[]): Promise<Map<string, LockMode>> {
    const held = new Map<string, LockMode>();
    if (vgs.length === 0) return held;
    const [lvs, modes] = await Promise.all([this.listLvs(vgs), this.lockModes()]);
    for (const info of lvs) {
      const mode = modes.get(info.uuid);
      if (mode === 'ex' || mode === 'sh') held.set(lvKey(info), mode);
    }
    return held;
  }

  /**
   * Asks LVM which LV a device path names (`/dev/VG/LV`, `/dev/mapper/VG-LV` with doubled dashes).
   * undefined when LVM says it is not an LV; throws when LVM could not answer.
   */
  async resolvePath(path: string): Promise<LvRef | undefined> {
    if (typeof path !== 'string' || !path.startsWith('/') || /[\0\n]/.test(path)) {
      throw new LvmNameError(`invalid device path ${JSON.stringify(path)}: it must be an absolute path`);
    }
    const { label, run } = await this.runRead('lvm', ['lvs', '--reportformat', 'json', '-o', 'vg_name,lv_name', path]);
    if (run.rc !== 0 || run.timedOut) {
      const lines = run.stderr.split('\n').map((l) => l.trim());
      if (!run.timedOut && run.rc !== null && lines.some((l) => NOT_AN_LV.some((re) => re.test(l)))) return undefined;
      throw this.failure(label, run);
    }
    const rows = parseReport(label, run.stdout, 'lv');
    if (rows.length !== 1) return undefined;
    const ref = { vg: field(label, rows[0]!, 'vg_name', true), lv: field(label, rows[0]!, 'lv_name', true) };
    return pathNames(path, ref) ? ref : undefined;
  }

  private async runRead(which: 'lvm' | 'lockctl', args: string[]): Promise<{ label: string; run: RunResult }> {
    let label = '';
    const run = await this.limiter.run(() => {
      const s = this.settings();
      const file = which === 'lvm' ? s.command : s.lockctl;
      label = `${file} ${args[0]}`;
      return this.exec(file, args, { timeoutMs: s.timeoutMs });
    });
    return { label, run };
  }

  /**
   * `lvmlockctl --info` takes its answer on an abstract socket of a fixed name, so two at once on
   * a host (an admin's, a monitor's) fail with "socket error -98" (EADDRINUSE): wait and ask again.
   */
  private async readLockctlInfo(): Promise<{ label: string; stdout: string }> {
    for (let attempt = 1; ; attempt++) {
      const { label, run } = await this.runRead('lockctl', ['--info']);
      if (run.rc === 0 && !run.timedOut) return { label, stdout: run.stdout };
      if (attempt >= LOCKCTL_TRIES || !/socket error -98\b/.test(run.stdout + run.stderr)) throw this.failure(label, run);
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
    }
  }

  /** Runs a read command; returns its stdout or throws LvmCommandError naming the reason. */
  private async read(which: 'lvm' | 'lockctl', args: string[]): Promise<{ label: string; stdout: string }> {
    const { label, run } = await this.runRead(which, args);
    if (run.rc !== 0 || run.timedOut) throw this.failure(label, run);
    return { label, stdout: run.stdout };
  }

  private failure(label: string, run: RunResult): LvmCommandError {
    let reason: string;
    if (run.timedOut) {
      reason = `timed out after ${formatSeconds(this.settings().timeoutMs)} and was killed`;
    } else if (run.rc === null) {
      reason = run.signal ? `was killed by ${run.signal}` : (firstErrorLine(run.stderr) ?? 'could not be run');
    } else {
      reason = `failed with exit code ${run.rc}: ${firstErrorLine(run.stderr) ?? 'no error message'}`;
    }
    return new LvmCommandError(label, reason, run);
  }
}
