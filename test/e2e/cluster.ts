/**
 * The two-host end-to-end cluster: instances "src" (host_id 1) and "dst" (host_id 2) in one
 * network namespace, one shared loop device as vg0/lv1 and vg0/lv2, one LVM simulator state for
 * both, a throwaway CA for the daemons' peer channel, and the daemon under test on each.
 *
 * Tests drive guests through libvirt-dbus and check, after every step, the design's invariants
 * against the simulator (the stand-in for lvmlockd, the only source of truth for locks).
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { LockMode } from '../../src/locks/lv.js';
import { ROOT } from '../harness/paths.js';
import { runTool } from '../lvm-sim/run.js';
import { waitFor } from '../harness/process.js';
import { blankBootSector, busyBootSector } from './boot-sector.js';
import { type TlsFiles, makePeerCertificates } from './certs.js';
import { type DaemonConfig, type PeerHost, daemonConfig, renderDaemonConfig } from './daemon-config.js';
import { type GuestDisk, disksOfXml, guestXml, lvKeyOfDev } from './guest.js';
import { type HookCall, INSTANCE_MOUNT_POINTS, Instance, type InstanceSpec } from './instance.js';
import { type Holders, LockSampler, formatTimeline, historyViolations, qemuLifetimes, readHolders, readSimLog } from './lock-timeline.js';
import { MachineLock } from './machine-lock.js';
import { HostMountPoints } from './mount-points.js';
import { NetworkNamespace } from './netns.js';
import { findProgram, skipUnlessReady } from './requirements.js';
import { SharedDisk } from './shared-disk.js';

export const VG = 'vg0';
export const LVS = ['lv1', 'lv2'];
export const LV1 = `${VG}/lv1`;

const SPECS: InstanceSpec[] = [
  { name: 'src', hostId: 1, hostname: 'e2e-src', hostUuid: '11111111-1111-4111-8111-111111111111', ip: '192.0.2.1', migrationPorts: [49152, 49199] },
  { name: 'dst', hostId: 2, hostname: 'e2e-dst', hostUuid: '33333333-3333-4333-8333-333333333333', ip: '192.0.2.2', migrationPorts: [49200, 49249] },
];

export interface ClusterOptions {
  /** Give the daemons the peer channel (mutual TLS between src and dst). Default true. */
  peers?: boolean;
  /** Changes a daemon's config before it is written; called again for every (re)write. */
  configure?: (config: DaemonConfig, instance: Instance) => void;
  /** Start the daemons. Default true. */
  daemons?: boolean;
}

export interface Guest {
  name: string;
  uuid: string;
  disks: GuestDisk[];
  /** "vg/lv" of every disk. */
  lvs: string[];
}

export interface MigrationOutcome {
  ok: boolean;
  /** libvirt's error, when it failed. */
  error?: string;
  ms: number;
}

export interface Migration {
  t0: number;
  done: Promise<MigrationOutcome>;
}

/** Per instance name, the LVs it must hold and in which mode; every LV not listed must not be held there. */
export type Expectation = Record<string, Record<string, LockMode>>;

export interface InvariantOptions {
  /** A migration is under way: sh is as good as ex for the guest's LVs. */
  migrating?: boolean;
  /** Also invariant 3: no LV held on a host where no domain uses it. */
  settled?: boolean;
}

let clusterCount = 0;

/**
 * Clusters not disposed yet. An interrupted run (Ctrl-C, or the runner ending the file) would
 * otherwise leave libvirtd, QEMU, namespaces and loop devices behind.
 */
const live = new Set<E2eCluster>();
let signalsHooked = false;

function disposeOnSignals(): void {
  if (signalsHooked) return;
  signalsHooked = true;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.log(`e2e: ${signal}: stopping ${live.size} cluster(s) before exiting`);
      const code = signal === 'SIGINT' ? 130 : 143;
      const exit = setTimeout(() => process.exit(code), 60_000);
      void Promise.allSettled([...live].map((c) => c.dispose())).then(() => {
        clearTimeout(exit);
        process.exit(code);
      });
    });
  }
}

export class E2eCluster {
  readonly t0 = Date.now();
  readonly guests = new Map<string, Guest>();
  /** Step timings, printed with the report. */
  readonly steps: Array<{ what: string; ms: number }> = [];
  private sampler: LockSampler | undefined;
  private netns: NetworkNamespace | undefined;
  private disk: SharedDisk | undefined;
  private readonly mountPoints = new HostMountPoints();
  private tls = new Map<string, TlsFiles>();
  readonly instances: Instance[] = [];
  private emulator = 'qemu-system-x86_64';

  private constructor(
    readonly baseDir: string,
    readonly stateFile: string,
    private readonly options: ClusterOptions,
    private readonly lock: MachineLock,
  ) {}

  get src(): Instance {
    return this.instances[0];
  }

  get dst(): Instance {
    return this.instances[1];
  }

  other(instance: Instance): Instance {
    return instance === this.src ? this.dst : this.src;
  }

  private readonly names = new Map(SPECS.map((s) => [s.hostId, s.name]));

  async timed<T>(what: string, work: () => Promise<T>): Promise<T> {
    const started = Date.now();
    try {
      return await work();
    } finally {
      this.steps.push({ what, ms: Date.now() - started });
    }
  }

  // ---- start and stop ----------------------------------------------------------------------------

  static async start(options: ClusterOptions = {}): Promise<E2eCluster> {
    const lock = await MachineLock.acquire();
    const baseDir = await mkdtemp(join(tmpdir(), 'vle2e-')).catch(async (err: Error) => {
      await lock.release();
      throw err;
    });
    const cluster = new E2eCluster(baseDir, join(baseDir, 'cluster.json'), options, lock);
    live.add(cluster);
    disposeOnSignals();
    try {
      await cluster.setUp();
    } catch (err) {
      const report = await cluster.report().catch((e: Error) => `(no report: ${e.message})`);
      const problems = await cluster.dispose().then(() => [], (e: Error) => [e.message]);
      throw new Error(`starting the e2e cluster failed: ${(err as Error).message}\n${problems.join('\n')}\n${report}`);
    }
    return cluster;
  }

  private async setUp(): Promise<void> {
    this.emulator = (await findProgram('qemu-system-x86_64')) ?? this.emulator;
    await this.mountPoints.ensure(INSTANCE_MOUNT_POINTS);
    this.netns = await NetworkNamespace.create(`vle2e-${process.pid}-${++clusterCount}`, SPECS.map((s) => s.ip));
    this.disk = await SharedDisk.create(join(this.baseDir, 'shared-lv.img'), 64);
    await this.timed('simulated shared VG', () => this.createSharedVg());
    if (this.options.peers ?? true) {
      await mkdir(join(this.baseDir, 'tls'));
      this.tls = await makePeerCertificates(join(this.baseDir, 'tls'), SPECS.map((s) => ({ name: s.name, ip: s.ip })));
    }
    const lvLinks = Object.fromEntries(LVS.map((lv) => [`/dev/${VG}/${lv}`, this.disk!.device]));
    for (const spec of SPECS) {
      this.instances.push(
        new Instance(spec, {
          baseDir: this.baseDir,
          netns: this.netns.name,
          lvLinks,
          stateFile: this.stateFile,
          cacheDir: join(ROOT, '.cache/e2e', `libvirt-cache-${spec.name}`),
          subreaper: process.env.VLE2E_NO_SUBREAPER !== '1',
        }),
      );
    }
    // Both at once: the first start of libvirtd probes QEMU's capabilities for seconds.
    await this.timed('libvirtd instances', () => all(this.instances.map((i) => i.start())));
    this.sampler = new LockSampler(this.stateFile);
    this.sampler.start();
    if (this.options.daemons ?? true) {
      await this.timed('daemons', () => all(this.instances.map(async (i) => {
        await this.writeDaemonConfig(i);
        await i.startDaemon();
      })));
    }
  }

  private async createSharedVg(): Promise<void> {
    await this.sim(1, 'init');
    await this.sim(1, 'create-vg', VG, '--lock-type', 'sanlock');
    for (const lv of LVS) await this.sim(1, 'create-lv', VG, lv);
    for (const spec of SPECS) await this.sim(spec.hostId, 'lockstart', VG);
  }

  /** The simulator's admin tool (`lvm-sim ARGS`) as one host of the cluster, run in-process. */
  async sim(hostId: number, ...args: string[]): Promise<string> {
    const r = await runTool('lvm-sim', args, { stateFile: this.stateFile, hostId, lockTimeoutMs: 10_000 });
    if (r.rc !== 0) throw new Error(`lvm-sim ${args.join(' ')} as host ${hostId} failed (${r.rc}): ${r.stderr.trim()}`);
    return r.stdout;
  }

  daemonConfigOf(instance: Instance): DaemonConfig {
    const self: PeerHost = { name: instance.name, ip: instance.spec.ip, hostId: instance.hostId };
    const others = this.instances.filter((i) => i !== instance).map((i) => ({ name: i.name, ip: i.spec.ip, hostId: i.hostId }));
    const config = daemonConfig({ self, peers: this.tls.size ? others : undefined, tls: this.tls.get(instance.name) });
    this.options.configure?.(config, instance);
    return config;
  }

  async writeDaemonConfig(instance: Instance, config: DaemonConfig = this.daemonConfigOf(instance)): Promise<void> {
    await instance.writeDaemonConfig(renderDaemonConfig(config));
  }

  /** Stops everything this cluster started, each step attempted; throws the problems at the end. */
  async dispose(): Promise<void> {
    if (!live.delete(this)) return;
    const problems: string[] = [];
    await this.sampler?.stop();
    for (const i of this.instances) problems.push(...(await i.stop()));
    const step = async (what: string, work: () => Promise<unknown>) => {
      try {
        await work();
      } catch (err) {
        problems.push(`${what}: ${(err as Error).message}`);
      }
    };
    await step('network namespace', async () => this.netns?.remove());
    await step('loop device', async () => this.disk?.dispose());
    await step('mount points', () => this.mountPoints.dispose());
    if (process.env.VLE2E_KEEP === '1') {
      console.log(`e2e: kept ${this.baseDir} (VLE2E_KEEP=1)`);
    } else {
      await step('state directory', () => rm(this.baseDir, { recursive: true, force: true }));
    }
    await step('machine lock', () => this.lock.release());
    if (problems.length) throw new Error(`cleanup problems:\n${problems.join('\n')}`);
  }

  // ---- guests --------------------------------------------------------------------------------------

  /**
   * Defines and starts the test guest on an instance. A busy guest boots the RAM-dirtying sector,
   * so a throttled migration of it never converges; an idle one boots nothing and migrates in
   * about a second. All LVs share the one loop device, hence one boot sector for all guests.
   */
  async startGuest(on: Instance, opts: { busy?: boolean; name?: string; disks?: GuestDisk[] } = {}): Promise<Guest> {
    const disks = opts.disks ?? [{ dev: `/dev/${LV1}` }];
    const guest: Guest = {
      name: opts.name ?? 'e2e-vm',
      uuid: randomUUID(),
      disks,
      lvs: disks.map((d) => lvKeyOfDev(d.dev)).filter((k): k is string => k !== undefined),
    };
    await this.disk!.writeBootSector(opts.busy ? busyBootSector() : blankBootSector());
    this.guests.set(guest.uuid, guest);
    await this.timed(`define and start ${guest.name} on ${on.name}`, async () => {
      await on.libvirt.define(guestXml({ name: guest.name, uuid: guest.uuid, disks, emulator: this.emulator }));
      await on.libvirt.create(guest.uuid);
    });
    return guest;
  }

  /** Names of the instances where libvirt has the guest active (running or paused). */
  async runningOn(guest: Guest): Promise<string[]> {
    const where: string[] = [];
    for (const i of this.instances) if ((await i.libvirt.activeDomains()).includes(guest.uuid)) where.push(i.name);
    return where;
  }

  /**
   * Starts a p2p live migration (MigrateToURI3 on the source); `done` settles when libvirt answers.
   * `flags` replaces the live flags (e.g. OFFLINE_MIGRATE_FLAGS).
   */
  startMigration(guest: Guest, from: Instance, to: Instance, opts: { bandwidthMiB?: number; flags?: number } = {}): Migration {
    const t0 = Date.now();
    const done = from.libvirt.migrateToUri3(guest.uuid, to.libvirtUri, { bandwidthMiB: opts.bandwidthMiB, flags: opts.flags }).then(
      () => ({ ok: true, ms: Date.now() - t0 }),
      (err: Error) => ({ ok: false, error: err.message, ms: Date.now() - t0 }),
    );
    void done.then((o) => this.steps.push({ what: `migrate ${guest.name} ${from.name}->${to.name} (${o.ok ? 'ok' : 'failed'})`, ms: o.ms }));
    return { t0, done };
  }

  migrate(guest: Guest, from: Instance, to: Instance, opts: { bandwidthMiB?: number; flags?: number } = {}): Promise<MigrationOutcome> {
    return this.startMigration(guest, from, to, opts).done;
  }

  /**
   * Defines a domain on an instance without starting it and without counting it among the
   * cluster's guests (the invariant checks map QEMU lifetimes to guests by name): e.g. a
   * different domain that takes the name of a guest on another host.
   */
  async defineDomain(on: Instance, spec: { name: string; uuid?: string; disks: GuestDisk[] }): Promise<string> {
    const uuid = spec.uuid ?? randomUUID();
    await this.timed(`define ${spec.name} (${uuid}) on ${on.name}`, () =>
      on.libvirt.define(guestXml({ name: spec.name, uuid, disks: spec.disks, emulator: this.emulator })),
    );
    return uuid;
  }

  /** The hook calls libvirt made for a guest on an instance since a moment, in order. */
  async hookCallsSince(on: Instance, guest: Guest, since: number): Promise<HookCall[]> {
    return (await on.hookCalls()).filter((c) => c.domain === guest.name && c.t >= since - 5);
  }

  async waitForHook(on: Instance, guest: Guest, op: string, subop: string, since: number, timeoutMs = 60_000): Promise<number> {
    return waitFor(`hook "${op} ${subop}" of ${guest.name} on ${on.name}`, async () => {
      const call = (await on.hookCalls()).find((c) => c.domain === guest.name && c.op === op && c.subop === subop && c.t >= since - 5);
      return call?.t;
    }, timeoutMs, 50);
  }

  async waitForEvent(on: Instance, guest: Guest, event: number, detail: number | undefined, since: number, timeoutMs = 60_000): Promise<number> {
    return waitFor(`event (${event},${detail ?? '*'}) of ${guest.name} on ${on.name}`, () => {
      const e = on.libvirt.events.find((x) => x.uuid === guest.uuid && x.event === event && (detail === undefined || x.detail === detail) && x.t >= since);
      return e?.t;
    }, timeoutMs, 50);
  }

  /**
   * Waits until the destination's incoming QEMU is up, (2,1) Started/Migrated, the moment the
   * memory transfer starts. Fails at once if the migration ends first (refused, or converged).
   */
  async waitForIncoming(guest: Guest, to: Instance, migration: Migration, timeoutMs = 90_000): Promise<void> {
    const ended = migration.done.then((o) => {
      throw new Error(`the migration ended before the destination's QEMU was up: ${o.ok ? 'it succeeded' : `it failed: ${o.error}`}`);
    });
    await Promise.race([this.waitForEvent(to, guest, 2, 1, migration.t0, timeoutMs), ended]);
    ended.catch(() => undefined);
  }

  // ---- locks and invariants ---------------------------------------------------------------------

  holders(): Promise<Holders> {
    return readHolders(this.stateFile);
  }

  /** The LVs an instance holds, with their modes, from the simulator. */
  async heldOn(instance: Instance): Promise<Record<string, LockMode>> {
    const held: Record<string, LockMode> = {};
    for (const [lv, byHost] of Object.entries(await this.holders())) {
      const mode = byHost[instance.hostId];
      if (mode) held[lv] = mode;
    }
    return held;
  }

  /** The sampled lock states since a moment: what lvmlockd granted, as seen every few ms. */
  lockHistorySince(t: number): Holders[] {
    return (this.sampler?.samples ?? []).filter((s) => s.a >= t).map((s) => s.holders);
  }

  private lvsOfDomainName = (name: string): string[] => {
    for (const g of this.guests.values()) if (g.name === name) return g.lvs;
    return [];
  };

  /**
   * Checks the design's invariants now and over the sampled history so far:
   * 1. no LV is ex on one host while held on another;
   * 2. every host where libvirt has the guest active holds its LVs: ex, or sh while migrating
   *    (or for shareable disks); and in the history, no moment where a guest's QEMU existed on a
   *    host that held nothing for its LVs;
   * 3. (settled) no LV stays held on a host where no active domain uses it.
   */
  async checkInvariants(opts: InvariantOptions = {}): Promise<void> {
    const violations: string[] = [];
    const holders = await this.holders();
    for (const [lv, byHost] of Object.entries(holders)) {
      const modes = Object.values(byHost);
      if (modes.includes('ex') && modes.length > 1) violations.push(`invariant 1: ${lv} is ex on one host while held on another: ${JSON.stringify(this.named(byHost))}`);
    }
    for (const instance of this.instances) {
      const used = new Set<string>();
      for (const uuid of await instance.libvirt.activeDomains()) {
        let disks: GuestDisk[];
        try {
          disks = disksOfXml(await instance.libvirt.xml(uuid));
        } catch {
          continue; // Gone between the listing and the lookup.
        }
        for (const disk of disks) {
          const lv = lvKeyOfDev(disk.dev);
          if (!lv) continue;
          used.add(lv);
          const mode = holders[lv]?.[instance.hostId];
          const acceptable = opts.migrating || disk.shareable ? ['ex', 'sh'] : ['ex'];
          if (!mode || !acceptable.includes(mode)) {
            violations.push(`invariant 2: domain ${uuid} is active on ${instance.name}, which holds ${lv} ${mode ?? 'not at all'} (wanted ${acceptable.join(' or ')})`);
          }
        }
      }
      if (opts.settled) {
        for (const [lv, byHost] of Object.entries(holders)) {
          if (byHost[instance.hostId] && !used.has(lv)) violations.push(`invariant 3: ${instance.name} holds ${lv} ${byHost[instance.hostId]} but no active domain there uses it`);
        }
      }
    }
    violations.push(...(await this.historyViolations()));
    if (violations.length) throw new Error(`invariants violated:\n  ${violations.join('\n  ')}\n${await this.report()}`);
  }

  private async historyViolations(): Promise<string[]> {
    if (!this.sampler) return [];
    const hosts = await Promise.all(this.instances.map(async (i) => ({ name: i.name, hostId: i.hostId, calls: await i.hookCalls() })));
    return historyViolations(this.sampler.samples, qemuLifetimes(hosts), this.lvsOfDomainName, this.names, this.t0).map((v) => `history: ${v}`);
  }

  private named(byHost: Record<number, LockMode>): Record<string, LockMode> {
    return Object.fromEntries(Object.entries(byHost).map(([id, mode]) => [this.names.get(Number(id)) ?? id, mode]));
  }

  /** Polls until every instance holds exactly what `expect` lists (vg0 LVs only), or fails with the logs. */
  async settle(expect: Expectation, timeoutMs = 30_000): Promise<number> {
    const started = Date.now();
    let last = '';
    for (;;) {
      const holders = await this.holders();
      const mismatches: string[] = [];
      for (const instance of this.instances) {
        const want = expect[instance.name] ?? {};
        for (const lv of LVS.map((l) => `${VG}/${l}`)) {
          const have = holders[lv]?.[instance.hostId];
          if (have !== want[lv]) mismatches.push(`${instance.name} ${lv}: ${have ?? 'nothing'} (expected ${want[lv] ?? 'nothing'})`);
        }
      }
      if (mismatches.length === 0) {
        this.steps.push({ what: `settle ${JSON.stringify(expect)}`, ms: Date.now() - started });
        return Date.now() - started;
      }
      last = mismatches.join('; ');
      if (Date.now() - started > timeoutMs) {
        throw new Error(`locks did not settle within ${timeoutMs} ms to ${JSON.stringify(expect)}: ${last}\n${await this.report()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  // ---- diagnostics --------------------------------------------------------------------------------

  /** Everything needed to understand a failure: both daemons' logs and the merged timeline. */
  async report(): Promise<string> {
    const parts: string[] = [];
    parts.push(`=== steps ===\n${this.steps.map((s) => `${String(s.ms).padStart(7)} ms  ${s.what}`).join('\n')}`);
    for (const i of this.instances) {
      const log = i.daemonOutput().split('\n');
      parts.push(`=== ${i.name} daemon output (last ${Math.min(log.length, 200)} lines) ===\n${log.slice(-200).join('\n')}`);
      if (i.daemonRunning) {
        const status = await i.status().then((s) => JSON.stringify({ locks: s.locks, domains: s.domains, lastReconcile: s.lastReconcile }), (e: Error) => e.message);
        parts.push(`=== ${i.name} virt-lvmlockctl status --json ===\n${status}`);
      }
    }
    const hosts = await Promise.all(
      this.instances.map(async (i) => ({ name: i.name, calls: await i.hookCalls(), events: safeEvents(i), lvm: await readSimLog(i.simLog) })),
    );
    parts.push(
      `=== timeline (seconds since cluster start) ===\n${formatTimeline({ t0: this.t0, names: this.names, hosts, lockChanges: this.sampler?.changes() ?? [] })}`,
    );
    if (this.sampler?.errors.length) parts.push(`=== lock sampler errors ===\n${this.sampler.errors.join('\n')}`);
    return parts.join('\n');
  }
}

function safeEvents(i: Instance) {
  try {
    return i.libvirt.events;
  } catch {
    return [];
  }
}

/** Runs all, waits for all, then throws the first failure (a half-started sibling is cleaned up by the caller). */
async function all(works: Array<Promise<unknown>>): Promise<void> {
  const results = await Promise.allSettled(works);
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => (r.reason as Error).message);
  if (failures.length) throw new Error(failures.join('\n'));
}

/**
 * Runs a test body on a fresh cluster: skips loudly when the machine cannot run it, and always
 * cleans up. A failure of the body gets the cluster's report appended; a cleanup problem after a
 * passing body fails the test.
 */
export async function withCluster(t: TestContext, options: ClusterOptions, body: (cluster: E2eCluster) => Promise<void>): Promise<void> {
  if (await skipUnlessReady(t)) return;
  const cluster = await E2eCluster.start(options);
  let failure: unknown;
  try {
    await body(cluster);
  } catch (err) {
    failure = err;
    const message = (err as Error).message ?? String(err);
    if (err instanceof Error && !message.includes('=== timeline')) {
      err.message = `${message}\n${await cluster.report().catch((e: Error) => `(no report: ${e.message})`)}`;
    }
  } finally {
    t.diagnostic(`steps: ${cluster.steps.map((s) => `${s.what} ${s.ms}ms`).join(', ')}`);
    try {
      await cluster.dispose();
    } catch (err) {
      if (failure === undefined) failure = err;
      else console.log(`e2e cleanup after a failed test: ${(err as Error).message}`);
    }
  }
  if (failure !== undefined) throw failure;
}
