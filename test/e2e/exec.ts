import { type CommandResult, run } from '../harness/host.js';

export type { CommandResult };

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  input?: string;
  timeoutMs?: number;
}

/** Runs a program (argument vector, timeout that kills) and fails with its stderr unless it exits 0. */
export async function must(file: string, args: string[], opts: RunOptions = {}): Promise<CommandResult> {
  const r = await run(file, args, { timeoutMs: 30_000, ...opts });
  if (r.rc !== 0) {
    const why = r.rc === 128 ? `killed after ${Math.round(r.ms)} ms (timeout or signal)` : `exit status ${r.rc}`;
    throw new Error(`${file} ${args.join(' ')}: ${why}: ${(r.stderr || r.stdout).trim()}`);
  }
  return r;
}

/** Like must, but a failure is only returned: for cleanup steps that must all be attempted. */
export function attempt(file: string, args: string[], opts: RunOptions = {}): Promise<CommandResult> {
  return run(file, args, { timeoutMs: 30_000, ...opts });
}
