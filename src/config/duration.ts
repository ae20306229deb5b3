/**
 * Durations as people write them in the config file: a number and a unit, like 30s, 500ms,
 * 2m, 1h or 1.5s. A bare number is refused on purpose: "timeout: 30" could mean seconds or
 * milliseconds, and guessing wrong makes a timeout 1000 times too short or too long.
 */

const UNIT_MS: Readonly<Record<string, bigint>> = { ms: 1n, s: 1000n, m: 60_000n, h: 3_600_000n };

/** The accepted forms, quoted by every message about a malformed duration. */
export const DURATION_FORMS = 'write it like 30s or 500ms (units ms, s, m, h; 1.5s also works)';

const DURATION_PATTERN = /^(\d+)(?:\.(\d+))?(ms|s|m|h)$/;

/** Milliseconds for a duration like "30s"; throws an Error that says what is wrong and what to write. */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  const match = DURATION_PATTERN.exec(trimmed);
  if (match === null) {
    throw new Error(`${JSON.stringify(text)} is not a duration; ${DURATION_FORMS}`);
  }
  const [, whole, fraction = '', unit] = match;
  const factor = UNIT_MS[unit!]!;
  // Exact decimal arithmetic: 1.1s must be 1100 ms, not 1100.0000000000002.
  const scale = 10n ** BigInt(fraction.length);
  const scaled = (BigInt(whole!) * scale + BigInt(fraction === '' ? '0' : fraction)) * factor;
  if (scaled % scale !== 0n) {
    throw new Error(`${JSON.stringify(text)} is not a whole number of milliseconds; ${DURATION_FORMS}`);
  }
  const ms = scaled / scale;
  if (ms > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new Error(`${JSON.stringify(text)} is too long a duration`);
  }
  return Number(ms);
}

/**
 * The shortest form parseDuration reads back as the same number: whole hours, minutes or
 * seconds when they fit, else seconds with a fraction, else milliseconds.
 */
export function formatDuration(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new RangeError(`cannot format ${ms} as a duration: it must be a whole, non-negative number of milliseconds`);
  }
  if (ms === 0) return '0s';
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  if (ms > 1000) {
    const fraction = String(ms % 1000).padStart(3, '0').replace(/0+$/, '');
    return `${Math.floor(ms / 1000)}.${fraction}s`;
  }
  return `${ms}ms`;
}
