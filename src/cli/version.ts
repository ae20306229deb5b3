import { createRequire } from 'node:module';

/**
 * The package's version, read the way the daemon reads it (package.json two levels above dist/src),
 * without loading the daemon: `virt-lvmlockctl --version` must answer even where the daemon's
 * modules or the bus are broken.
 */
export const VERSION: string = (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;
