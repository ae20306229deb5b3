export { ACTIONS, HOOK_OPS, LOG_LEVELS, type Action, type Config, type HookOp, type LogLevel } from './types.js';
export { DURATION_FORMS, formatDuration, parseDuration } from './duration.js';
export { ConfigError } from './errors.js';
export { defaultConfig, loadConfig, parseConfig } from './load.js';
export { diffConfig, type ConfigChange } from './diff.js';
export { hookGatedOps } from './actions.js';
export { CONFIG_FILE } from './schema.js';
export type { Reload } from './settings.js';
