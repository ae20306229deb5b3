/**
 * The host side of the command channel: a unix socket that QEMU connects to the guest's
 * virtio-serial port, one JSON request per line, replies matched by id (guest-files.ts has the
 * agent). Requests sent before the agent reads the port may be answered late or never; ping()
 * therefore retries with fresh ids, and replies to ids nobody waits for are dropped.
 */
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RunResult } from '../../src/lvm/run.js';

/** What one command in the guest did, as the daemon's own runner reports it; `ms` is guest time. */
export type GuestResult = RunResult;

interface Reply {
  id: number | null;
  error?: string;
  rc?: number | null;
  signal?: string | null;
  stdout?: string;
  stderr?: string;
  ms?: number;
  timedOut?: boolean;
}

interface Pending {
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** Slack for the host side of a deadline: the guest kills the command at timeoutMs itself. */
const HOST_SLACK_MS = 15_000;

export class AgentClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private buffer = '';

  private constructor(private readonly name: string, private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => this.failAll(new Error(`${name}: the command channel closed (QEMU gone?)`)));
    socket.on('error', () => undefined);
  }

  /** Connects to QEMU's end of the channel, waiting until QEMU has created the socket. */
  static async connect(name: string, path: string, timeoutMs: number): Promise<AgentClient> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        return new AgentClient(name, socket);
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`${name}: cannot connect to the command channel ${path}: ${(err as Error).message}`);
        await sleep(200);
      }
    }
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      let reply: Reply;
      try {
        reply = JSON.parse(line) as Reply;
      } catch {
        continue; // noise from a port reopened mid-line
      }
      if (reply.id === null) continue;
      const p = this.pending.get(reply.id);
      if (!p) continue;
      this.pending.delete(reply.id);
      clearTimeout(p.timer);
      p.resolve(reply);
    }
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }

  private request(body: Record<string, unknown>, what: string, waitMs: number): Promise<Reply> {
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: no answer to ${what} after ${waitMs} ms`));
      }, waitMs);
      this.pending.set(id, { resolve, reject, timer });
      this.socket.write(JSON.stringify({ id, ...body }) + '\n');
    });
  }

  private static result(name: string, what: string, r: Reply): GuestResult {
    if (r.error !== undefined) throw new Error(`${name}: ${what}: ${r.error}`);
    return {
      rc: r.rc ?? null,
      signal: r.signal ?? null,
      stdout: Buffer.from(r.stdout ?? '', 'base64').toString('utf8'),
      stderr: Buffer.from(r.stderr ?? '', 'base64').toString('utf8'),
      ms: r.ms ?? 0,
      timedOut: r.timedOut ?? false,
    };
  }

  /** Runs argv in the guest (no shell); the guest kills it after timeoutMs. */
  async run(argv: string[], opts: { timeoutMs: number; env?: Record<string, string> }): Promise<GuestResult> {
    const what = argv.join(' ');
    const r = await this.request({ argv, timeoutMs: opts.timeoutMs, env: opts.env }, what, opts.timeoutMs + HOST_SLACK_MS);
    return AgentClient.result(this.name, what, r);
  }

  /** Writes a file in the guest. */
  async put(path: string, data: Buffer, mode = 0o644): Promise<void> {
    const what = `write ${path} (${data.length} bytes)`;
    AgentClient.result(this.name, what, await this.request({ put: path, data: data.toString('base64'), mode }, what, 120_000));
  }

  /** Waits until the agent answers at all (it starts early in the guest's boot). */
  async ping(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await this.request({ argv: ['true'], timeoutMs: 5000 }, 'ping', 10_000);
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`${this.name}: the agent did not answer within ${timeoutMs / 1000} s: ${(err as Error).message}`);
      }
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
