/**
 * Host-side external commands for the test bed: argument vectors only (never a shell), each with a
 * timeout that kills it, stdin optionally fed from a buffer or stream and stdout optionally sent to a
 * stream instead of being collected.
 */
import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

export interface HostCommandResult {
  rc: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
}

export interface HostCommandOptions {
  timeoutMs: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to the command's stdin, which is then closed. */
  input?: string | Buffer;
  /** Receives stdout instead of the result (for binary output such as an archive). */
  stdoutTo?: Writable;
}

/** Enough for any listing or error text these commands print; the rest is dropped. */
const KEEP_CHARS = 1024 * 1024;
const KILL_GRACE_MS = 2000;

function collector(): { add: (chunk: Buffer) => void; text: () => string } {
  let text = '';
  return {
    add: (chunk) => {
      if (text.length < KEEP_CHARS) text += chunk.toString('utf8');
    },
    text: () => text,
  };
}

export function runHost(file: string, args: string[], opts: HostCommandOptions): Promise<HostCommandResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    const out = collector();
    const err = collector();
    let timedOut = false;
    let settled = false;
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: { ...process.env, LC_ALL: 'C', LANG: 'C', ...opts.env },
      shell: false,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const finish = (rc: number | null, signal: NodeJS.Signals | null, extra?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(killer);
      resolve({ rc, signal, stdout: out.text(), stderr: err.text() + (extra ?? ''), ms: Math.round(performance.now() - started), timedOut });
    };
    let killer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      killer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
    }, opts.timeoutMs);
    // stdout and stderr are always pipes here (stdio above).
    if (opts.stdoutTo) child.stdout!.pipe(opts.stdoutTo, { end: false });
    else child.stdout!.on('data', out.add);
    child.stderr!.on('data', err.add);
    if (opts.input !== undefined && child.stdin) {
      child.stdin.on('error', () => undefined); // EPIPE when the command exits early; its rc tells why
      child.stdin.end(opts.input);
    }
    child.on('error', (e) => finish(null, null, `cannot run ${file}: ${e.message}`));
    child.on('close', (code, signal) => finish(code, signal));
  });
}

/** One line naming the command and why it failed. */
export function describeHostFailure(file: string, args: string[], r: HostCommandResult): string {
  const cmd = [file, ...args].join(' ');
  const short = cmd.length > 160 ? `${cmd.slice(0, 160)}...` : cmd;
  const why = r.timedOut ? `timed out after ${r.ms} ms` : r.rc === null ? `ended by ${r.signal ?? 'an error'}` : `exit code ${r.rc}`;
  const detail = r.stderr.trim().split('\n').slice(-5).join(' | ');
  return `${short}: ${why}${detail ? `: ${detail}` : ''}`;
}

/** Runs a command that must succeed; returns its stdout. */
export async function mustRunHost(file: string, args: string[], opts: HostCommandOptions): Promise<string> {
  const r = await runHost(file, args, opts);
  if (r.rc !== 0 || r.timedOut) throw new Error(describeHostFailure(file, args, r));
  return r.stdout;
}

/** Waits for a readable stream (e.g. a gzip stream piped to a file) to finish. */
export function finished(stream: Readable | Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.once('error', reject);
    stream.once('finish', () => resolve());
    stream.once('close', () => resolve());
  });
}
