/**
 * The state file shared by all simulated hosts: reads, atomic writes (temp file + rename, so a
 * reader never sees half a file) and an exclusive lock around every read-modify-write.
 *
 * The lock is a directory `<state>.lock` holding the owner's pid. It is created complete
 * (mkdir of a staging directory, pid written, then rename into place), so a lock directory
 * without an owner never exists. A lock whose owner has died is stale and removed; removal
 * happens under a second, short-lived guard directory so that two processes cannot both judge
 * the same lock stale and one of them delete a lock just taken by the other.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseState, SimStateError, type SimState } from './state.js';

const OWNER_FILE = 'owner';
/** A guard older than this was left by a process killed while removing a stale lock. */
const STALE_GUARD_MS = 2000;
export const DEFAULT_LOCK_TIMEOUT_MS = 10_000;

/** The state lock could not be taken in time. */
export class SimLockError extends Error {}

export function lockDirOf(stateFile: string): string {
  return `${stateFile}.lock`;
}

export function readState(file: string): SimState {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new SimStateError(`lvm-sim state file ${file} does not exist; create it with "lvm-sim init"`);
    }
    throw new SimStateError(`cannot read lvm-sim state file ${file}: ${(err as Error).message}`);
  }
  return parseState(text, file);
}

export function writeState(file: string, state: SimState): void {
  const temp = `${file}.tmp.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    writeFileSync(temp, `${JSON.stringify(state, null, 2)}\n`);
    renameSync(temp, file);
  } catch (err) {
    rmSync(temp, { force: true });
    throw new SimStateError(`cannot write lvm-sim state file ${file}: ${(err as Error).message}`);
  }
}

/**
 * Runs `body` while holding the state lock. `body` is synchronous on purpose: nothing else in
 * this process can run inside the critical section, so one process never races itself either.
 */
export async function withStateLock<T>(stateFile: string, opts: { timeoutMs: number; signal?: AbortSignal }, body: () => T): Promise<T> {
  const lockDir = lockDirOf(stateFile);
  await acquire(stateFile, lockDir, opts);
  try {
    return body();
  } finally {
    release(lockDir);
  }
}

async function acquire(stateFile: string, lockDir: string, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<void> {
  const staging = `${lockDir}.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    mkdirSync(staging);
    writeFileSync(join(staging, OWNER_FILE), `${process.pid}\n`);
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw new SimLockError(`cannot create the lock for lvm-sim state ${stateFile}: ${(err as Error).message}`);
  }
  const deadline = Date.now() + opts.timeoutMs;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        renameSync(staging, lockDir);
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EEXIST' && code !== 'ENOTEMPTY') {
          throw new SimLockError(`cannot take the lock ${lockDir} for lvm-sim state ${stateFile}: ${(err as Error).message}`);
        }
      }
      const owner = readOwner(lockDir);
      if (owner !== undefined && !isProcessAlive(owner)) {
        removeStaleLock(lockDir, owner);
        continue;
      }
      if (Date.now() >= deadline) {
        throw new SimLockError(
          `cannot lock lvm-sim state ${stateFile}: ${lockDir} has been held by pid ${owner ?? '(unknown)'} for more than ${opts.timeoutMs} ms`,
        );
      }
      // Short, jittered waits: critical sections last about a millisecond.
      await sleep(Math.min(2 + attempt, 20) + Math.random() * 5, undefined, { signal: opts.signal });
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

function release(lockDir: string): void {
  if (readOwner(lockDir) === process.pid) rmSync(lockDir, { recursive: true, force: true });
}

function readOwner(lockDir: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(join(lockDir, OWNER_FILE), 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Alive = exists and is not a zombie (a killed child its parent has not reaped yet). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

function removeStaleLock(lockDir: string, deadPid: number): void {
  const guard = `${lockDir}.steal`;
  try {
    mkdirSync(guard);
  } catch {
    try {
      if (Date.now() - statSync(guard).mtimeMs > STALE_GUARD_MS) rmdirSync(guard);
    } catch {
      // Another process removed it first.
    }
    return;
  }
  try {
    // Under the guard nobody else removes the lock, so the owner read here is the one removed.
    if (readOwner(lockDir) !== deadPid) return;
    const trash = `${lockDir}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
    renameSync(lockDir, trash);
    rmSync(trash, { recursive: true, force: true });
  } catch {
    // The lock vanished meanwhile: the next attempt sees what is there now.
  } finally {
    rmdirSync(guard);
  }
}
