/** Runs a simulator executable with an argument vector (never a shell), bounded by a timeout that kills. */
import { spawn } from 'node:child_process';

export interface ProgramResult {
  /** Exit code, or null when a signal ended the process. */
  rc: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runProgram(file: string, args: string[], opts: { env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<ProgramResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${file}: ${err.message}`));
    });
    child.on('close', (rc, signal) => {
      clearTimeout(timer);
      resolve({ rc, signal, stdout, stderr });
    });
  });
}
