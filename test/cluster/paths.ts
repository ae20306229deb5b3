import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root, from this module's place in dist/test/cluster/. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** Git-ignored: the hypervisor image (one per cache key) and the runs' overlays and disks. */
export const CACHE_DIR = process.env.CLUSTER_TESTBED_CACHE ? resolve(process.env.CLUSTER_TESTBED_CACHE) : join(ROOT, '.cache/cluster');
/** One directory per running cluster (overlays, shared disk, sockets, consoles); removed when it stops. */
export const RUNS_DIR = join(CACHE_DIR, 'runs');
