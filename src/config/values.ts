/**
 * Schemas for the kinds of value the config file holds, each with messages that say what was
 * written, why it is refused and what to write instead.
 */
import { z } from 'zod';
import { describeValue, listChoices } from './describe.js';
import { DURATION_FORMS, formatDuration, parseDuration } from './duration.js';

/** Longer delays overflow Node's timers, which then fire after 1 ms instead. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** "has no value; HINT" or "VALUE is not WHAT; HINT". */
function refusal(input: unknown, what: string, hint: string): string {
  if (input === null || input === undefined) return `has no value; ${hint}, or remove the key to use the default`;
  return `${describeValue(input)} is not ${what}; ${hint}`;
}

type Check<T> = (value: T) => string | undefined;

/** A text value checked by `problem`, which returns why the text is refused. */
function checkedText(what: string, hint: string, problem: Check<string>) {
  return z.string({ error: (issue) => refusal(issue.input, what, hint) }).check((ctx) => {
    const why = problem(ctx.value);
    if (why !== undefined) ctx.issues.push({ code: 'custom', message: why, input: ctx.value });
  });
}

export function oneOf<const T extends readonly [string, ...string[]]>(values: T, noun: string) {
  return z.enum(values, { error: (issue) => refusal(issue.input, `a ${noun}`, `write ${listChoices(values)}`) });
}

/**
 * A duration written like 30s, read as milliseconds. `why` explains the minimum to whoever
 * trips over it.
 */
export function duration(options: { min: string; default: string; why?: string }) {
  const minMs = parseDuration(options.min);
  const because = options.why === undefined ? '' : ` (${options.why})`;
  return z
    .string({
      error: (issue) =>
        typeof issue.input === 'number'
          ? `${issue.input} is not a duration: a bare number has no unit; ${DURATION_FORMS}`
          : refusal(issue.input, 'a duration', DURATION_FORMS),
    })
    .transform((text, ctx) => {
      let ms: number;
      try {
        ms = parseDuration(text);
      } catch (error) {
        ctx.issues.push({ code: 'custom', message: (error as Error).message, input: text });
        return z.NEVER;
      }
      if (ms < minMs) {
        ctx.issues.push({ code: 'custom', message: `${text} is shorter than the minimum of ${options.min}${because}`, input: text });
        return z.NEVER;
      }
      if (ms > MAX_TIMER_MS) {
        const longest = formatDuration(Math.floor(MAX_TIMER_MS / 3_600_000) * 3_600_000);
        ctx.issues.push({ code: 'custom', message: `${text} is longer than the longest timer the daemon can set (about ${longest})`, input: text });
        return z.NEVER;
      }
      return ms;
    })
    .default(parseDuration(options.default));
}

export function wholeNumber(min: number, max: number) {
  const hint = `write a whole number from ${min} to ${max}, without quotes`;
  return z.number({ error: (issue) => refusal(issue.input, 'a number', hint) }).check((ctx) => {
    const value = ctx.value;
    if (!Number.isInteger(value) || value < min || value > max) {
      ctx.issues.push({ code: 'custom', message: `${value} is out of range; ${hint}`, input: value });
    }
  });
}

const OBJECT_PATH = /^\/$|^(\/[A-Za-z0-9_]+)+$/;

export function objectPath() {
  const hint = 'write a D-Bus object path like /org/libvirt/QEMU';
  return checkedText('a D-Bus object path', hint, (value) =>
    OBJECT_PATH.test(value)
      ? undefined
      : `${JSON.stringify(value)} is not a D-Bus object path (elements of A-Z, a-z, 0-9 and _ after each /, no trailing /); ${hint}`,
  );
}

// One server address of the D-Bus address syntax: "transport:key=value,key=value", values
// made of the optionally-escaped bytes or %XX escapes.
const DBUS_VALUE = String.raw`(?:[-0-9A-Za-z_/.\\*]|%[0-9A-Fa-f]{2})*`;
const DBUS_ONE_ADDRESS = new RegExp(String.raw`^[a-z][a-z0-9-]*:(?:[A-Za-z0-9_-]+=${DBUS_VALUE}(?:,[A-Za-z0-9_-]+=${DBUS_VALUE})*)?$`);

export function dbusAddress() {
  const hint = 'write system, or a D-Bus address like unix:path=/run/dbus/system_bus_socket';
  return checkedText('a D-Bus address', hint, (value) => {
    if (value === 'system') return undefined;
    const parts = value.split(';').filter((part) => part !== '');
    if (parts.length > 0 && parts.every((part) => DBUS_ONE_ADDRESS.test(part))) return undefined;
    return `${JSON.stringify(value)} is neither system nor a D-Bus address (transport:key=value,..., with characters other than A-Z a-z 0-9 - _ / . \\ * escaped as %XX); ${hint}`;
  });
}

/** A program run with execFile: a bare name looked up in PATH, or an absolute path. */
export function program() {
  const hint = 'write a program name looked up in PATH, or an absolute path';
  return checkedText('a program', hint, (value) => {
    if (value === '') return `is empty; ${hint}`;
    if (/\s|\0/.test(value)) {
      return `${JSON.stringify(value)} contains a space: the program is run without a shell, so it cannot carry arguments; ${hint}`;
    }
    if (value.includes('/') && !value.startsWith('/')) {
      return `${JSON.stringify(value)} is a relative path, which would depend on the daemon's working directory; ${hint}`;
    }
    if (value.endsWith('/')) return `${JSON.stringify(value)} names a directory; ${hint}`;
    return undefined;
  });
}

export function absolutePath() {
  const hint = 'write an absolute path like /run/virt-lvmlockd';
  return checkedText('a path', hint, (value) => {
    if (!value.startsWith('/')) return `${JSON.stringify(value)} is not an absolute path; ${hint}`;
    if (value.includes('\0')) return `${JSON.stringify(value)} contains a NUL byte; ${hint}`;
    return undefined;
  });
}

// What LVM accepts as a VG name: letters, digits and + _ . -, not starting with -, not . or ..
const VG_NAME = /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$/;
const VG_NAME_MAX = 127;

export function vgName() {
  const hint = 'write a volume group name (letters, digits and + _ . -, not starting with -)';
  return z
    .string({
      error: (issue) =>
        typeof issue.input === 'number'
          ? `${issue.input} is a number, not a volume group name; write a name that looks like a number in quotes`
          : refusal(issue.input, 'a volume group name', hint),
    })
    .check((ctx) => {
      const name = ctx.value;
      let why: string | undefined;
      if (!VG_NAME.test(name) || name === '.' || name === '..') why = `${JSON.stringify(name)} is not a valid volume group name; ${hint}`;
      else if (name.length > VG_NAME_MAX) why = `${JSON.stringify(name)} is longer than LVM's limit of ${VG_NAME_MAX} characters`;
      if (why !== undefined) ctx.issues.push({ code: 'custom', message: why, input: name });
    });
}

export function vgNameList() {
  return z
    .array(vgName(), { error: (issue) => refusal(issue.input, 'a list of volume group names', 'write a list like [vg1, vg2]') })
    .default(() => []);
}

/**
 * "address:port" to listen on, "[v6]:port", or empty for no listener; `example` and `none` word
 * the hint for the key's job.
 */
export function listenAddress(example = { port: 16515, none: 'no peer server' }) {
  const hint = `write an address and port like 192.0.2.1:${example.port} or [2001:db8::1]:${example.port}, or "" for ${example.none}`;
  return checkedText('a listen address', hint, (value) => {
    if (value === '') return undefined;
    const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(value);
    if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) return `${JSON.stringify(value)} is not address:port; ${hint}`;
    return undefined;
  });
}

const PEER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$/;

/** A peer's name as its certificate carries it (CN or DNS name). */
export function peerName() {
  const hint = 'write a host name like hv2 or hv2.example.org';
  return checkedText('a peer name', hint, (value) => (PEER_NAME.test(value) ? undefined : `${JSON.stringify(value)} is not a host name; ${hint}`));
}

export function peerNameList() {
  return z
    .array(peerName(), { error: (issue) => refusal(issue.input, 'a list of peer names', 'write a list like [hv2, hv3]') })
    .default(() => []);
}

/** The cluster's other daemons: name, https URL, and optionally their lvmlockd host_id. */
export function peerHosts() {
  const url = checkedText('an https URL', 'write a URL like https://192.0.2.2:16515', (value) => {
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      return `${JSON.stringify(value)} is not a URL; write a URL like https://192.0.2.2:16515`;
    }
    if (parsed.protocol !== 'https:') return `${JSON.stringify(value)} is not https: peers only talk over TLS`;
    if (parsed.pathname !== '/' || parsed.search || parsed.hash) return `${JSON.stringify(value)} must be a bare https://host:port URL`;
    return undefined;
  });
  const host = z.strictObject(
    { name: peerName(), url, host_id: wholeNumber(1, 2000).optional() },
    { error: (issue) => (issue.code === 'invalid_type' ? `${describeValue(issue.input)} is not a peer; write { name: hv2, url: "https://192.0.2.2:16515", host_id: 2 }` : undefined) },
  );
  return z
    .array(host, { error: (issue) => refusal(issue.input, 'a list of peers', 'write a list of { name, url, host_id }') })
    .check((ctx) => {
      const seen = new Set<string>();
      for (const [i, peer] of ctx.value.entries()) {
        if (seen.has(peer.name)) ctx.issues.push({ code: 'custom', message: `peer ${peer.name} is listed twice`, path: [i, 'name'], input: peer.name });
        seen.add(peer.name);
      }
    })
    .transform((peers) => peers.map((p) => ({ name: p.name, url: p.url.replace(/\/$/, ''), hostId: p.host_id })))
    .default(() => []);
}

/**
 * CA and the two certificate pairs of the peer channel, in libvirt's PKI layout by default:
 * libvirt's server certificate template grants only serverAuth and its client template only
 * clientAuth, so the listener presents the server pair and outgoing requests the client pair.
 */
export function tlsFiles() {
  const keys = '{ ca: FILE, cert: FILE, key: FILE, client_cert: FILE, client_key: FILE }';
  return z
    .strictObject(
      {
        ca: absolutePath().default('/etc/pki/CA/cacert.pem'),
        cert: absolutePath().default('/etc/pki/libvirt/servercert.pem'),
        key: absolutePath().default('/etc/pki/libvirt/private/serverkey.pem'),
        client_cert: absolutePath().default('/etc/pki/libvirt/clientcert.pem'),
        client_key: absolutePath().default('/etc/pki/libvirt/private/clientkey.pem'),
      },
      { error: (issue) => (issue.code === 'invalid_type' ? `${describeValue(issue.input)} is not a mapping; write ${keys}` : undefined) },
    )
    .transform((files) => ({ ca: files.ca, cert: files.cert, key: files.key, clientCert: files.client_cert, clientKey: files.client_key }))
    .prefault({});
}

/** true or false, and nothing YAML 1.1 might have read as one (yes, on, 1). */
export function flag() {
  return z.boolean({ error: (issue) => refusal(issue.input, 'true or false', 'write true or false, without quotes') });
}
