/** What one simulated command printed, and its exit code, collected before it is written out. */

/** lvm2 tools/errors.h */
export const ECMD_PROCESSED = 0;
export const EINVALID_CMD_LINE = 3;
export const ECMD_FAILED = 5;
/** Not an lvm code (lvm never exits 1): the simulator itself is misconfigured or its state unusable. */
export const SIM_SETUP_ERROR = 1;

export interface ToolResult {
  rc: number;
  stdout: string;
  stderr: string;
}

export class Output {
  private readonly out: string[] = [];
  private readonly err: string[] = [];

  /** An lvm message on stderr: lvm indents every log line by two spaces. */
  error(message: string): void {
    this.err.push(`  ${message}`);
  }

  /** An lvm message on stdout (log_print), indented like stderr. */
  print(message: string): void {
    this.out.push(`  ${message}`);
  }

  /** A stdout line exactly as given (lvmlockctl, printf-style output). */
  line(text: string): void {
    this.out.push(text);
  }

  /** A stderr line exactly as given (getopt errors, simulator errors). */
  rawError(text: string): void {
    this.err.push(text);
  }

  result(rc: number): ToolResult {
    return { rc, stdout: joinLines(this.out), stderr: joinLines(this.err) };
  }
}

function joinLines(lines: string[]): string {
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}
