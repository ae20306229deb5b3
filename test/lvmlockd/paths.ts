import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root, from this module's place in dist/test/lvmlockd/. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** Git-ignored: the guest image (one per cache key), downloaded .debs, and the runs' disks. */
export const CACHE_DIR = process.env.LVMLOCKD_TESTBED_CACHE ? resolve(process.env.LVMLOCKD_TESTBED_CACHE) : join(ROOT, '.cache/lvmlockd');
export const DEBS_DIR = join(CACHE_DIR, 'debs');
/** One directory per running test bed (shared disk, 9p channels, consoles); removed when it stops. */
export const RUNS_DIR = join(CACHE_DIR, 'runs');
