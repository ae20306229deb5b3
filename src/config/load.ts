import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument } from 'yaml';
import { ConfigError, formatIssues } from './errors.js';
import { CONFIG_FILE } from './schema.js';
import type { Config } from './types.js';

/** Enough for any honest config; stops a file of nested aliases from expanding without bound. */
const MAX_ALIAS_COUNT = 100;

/** The configuration with every key at its default, as an empty file gives. */
export function defaultConfig(): Config {
  return parseConfig('', '(defaults)');
}

/** Parses and checks the text of a config file; `file` names it in errors. Throws ConfigError. */
export function parseConfig(text: string, file: string): Config {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new ConfigError(
      file,
      document.errors.map((error) => {
        const { line, col } = lineCounter.linePos(error.pos[0]);
        return `line ${line}, column ${col}: ${error.message}`;
      }),
    );
  }
  let data: unknown;
  try {
    data = document.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    throw new ConfigError(file, [`cannot read the YAML: ${(error as Error).message}`]);
  }
  // An empty file, or one that is only comments, means all defaults.
  const result = CONFIG_FILE.schema.safeParse(data ?? {});
  if (!result.success) {
    throw new ConfigError(file, formatIssues(result.error.issues, CONFIG_FILE.unknownKey));
  }
  const config: Config = result.data;
  return config;
}

/** Reads and parses a config file. Throws ConfigError, also when the file cannot be read. */
export async function loadConfig(file: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, [`cannot read the file: ${describeReadError(error)}`]);
  }
  return parseConfig(text, file);
}

function describeReadError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return 'it does not exist';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    default:
      return error instanceof Error ? error.message : String(error);
  }
}
