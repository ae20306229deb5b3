/** The simulator's configuration from the environment of each invocation. */
import { resolve } from 'node:path';
import { DEFAULT_LOCK_TIMEOUT_MS } from './store.js';
import type { SimContext } from './run.js';

export const MAX_HOST_ID = 2000;

/** A missing or malformed environment variable. */
export class SimEnvError extends Error {}

/**
 * LVMSIM_STATE (required): the cluster state file shared by all simulated hosts.
 * LVMSIM_HOST_ID (default 1): this host's sanlock host_id, 1..2000.
 * LVMSIM_LOG (optional): file that gets one JSON line per invocation.
 * LVMSIM_LOCK_TIMEOUT_MS (optional): how long to wait for the state lock (default 10000).
 */
export function contextFromEnv(env: NodeJS.ProcessEnv): SimContext {
  const stateFile = env.LVMSIM_STATE;
  if (!stateFile) {
    throw new SimEnvError('LVMSIM_STATE is not set: it must name the simulated cluster\'s state file (create one with "LVMSIM_STATE=FILE lvm-sim init")');
  }
  const hostText = env.LVMSIM_HOST_ID ?? '1';
  const hostId = Number(hostText);
  if (!/^\d+$/.test(hostText) || hostId < 1 || hostId > MAX_HOST_ID) {
    throw new SimEnvError(`LVMSIM_HOST_ID="${hostText}" is not a host id: expected an integer 1..${MAX_HOST_ID}`);
  }
  const timeoutText = env.LVMSIM_LOCK_TIMEOUT_MS;
  const lockTimeoutMs = timeoutText === undefined ? DEFAULT_LOCK_TIMEOUT_MS : Number(timeoutText);
  if (!Number.isFinite(lockTimeoutMs) || lockTimeoutMs < 0) {
    throw new SimEnvError(`LVMSIM_LOCK_TIMEOUT_MS="${timeoutText}" is not a number of milliseconds`);
  }
  return { stateFile: resolve(stateFile), hostId, lockTimeoutMs, logFile: env.LVMSIM_LOG ? resolve(env.LVMSIM_LOG) : undefined };
}
