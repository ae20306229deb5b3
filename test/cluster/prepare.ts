/**
 * What a cluster test file does first: find QEMU, the project's .deb and the hypervisor image
 * (built or from the cache). When any of them is missing here the tests are skipped, loudly,
 * with the reason.
 */
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { findQemu } from '../lvmlockd/testbed.js';
import { ensureHypervisorImage, type HypervisorImage } from './image.js';
import { ROOT } from './paths.js';

export interface Prepared {
  qemu: string;
  image: HypervisorImage;
  deb: string;
  version: string;
}

export function say(line: string): void {
  // stderr: node's test runner passes it through as it comes, whatever the reporter.
  process.stderr.write(`[cluster-testbed] ${line}\n`);
}

/** The .deb of this checkout's version: CLUSTER_TESTBED_DEB, or what `npm run package` left in dist/. */
async function findDeb(version: string): Promise<string | { skip: string }> {
  const deb = process.env.CLUSTER_TESTBED_DEB || join(ROOT, 'dist', `virt-lvmlockd_${version}_all.deb`);
  try {
    await access(deb);
    return deb;
  } catch {
    return { skip: `${deb} does not exist (build it with: bash scripts/package.sh)` };
  }
}

export async function prepare(): Promise<Prepared | { skip: string }> {
  const tools = await findQemu();
  if ('missing' in tools) return { skip: tools.missing };
  const version = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const deb = await findDeb(version);
  if (typeof deb !== 'string') return deb;
  try {
    const image = await ensureHypervisorImage(say);
    if (!image.built) say(`hypervisor image from cache in ${(image.ms / 1000).toFixed(1)} s`);
    return { qemu: tools.qemu, image, deb, version };
  } catch (err) {
    return { skip: `the hypervisor image could not be built: ${(err as Error).message}` };
  }
}

/** Registers one test that is skipped with the reason, and says it on stderr. */
export function skipLoudly(title: string, reason: string): void {
  say(`SKIPPED ${title}: ${reason}`);
  test(title, (t) => {
    t.skip(reason);
  });
}
