/**
 * Domain XML (live, inactive, or the qemu hook's stdin) to the disk sources whose LVs must
 * be locked, with the mode each one needs.
 *
 * Only what QEMU opens from a domain's disks is reported: each disk's own <source>, its
 * backing chain and the target of a running block job (<mirror>). Sources that cannot be
 * LVs (network, nvme, vhostuser, dir disks; ordinary files) are left out, and nothing is
 * ever reported as an empty path. Deciding which paths are LVs of managed VGs happens later.
 */
import type { LockMode } from '../locks/lv.js';
import { isDevPath } from './lv-path.js';
import { canonicalUuid } from './uuid.js';
import { childElements, firstChild, parseXmlDocument, type XmlElement, XmlSyntaxError } from './xml.js';

export type DiskSource =
  | { kind: 'path'; path: string } // block dev, or file/other source pointing at a path
  | { kind: 'volume'; pool: string; volume: string }; // <disk type='volume'>

export interface DiskRef {
  source: DiskSource;
  /** 'sh' for <shareable/>, <readonly/>, cdroms and backing images; otherwise 'ex'. */
  mode: LockMode;
  role: 'disk' | 'backing' | 'mirror';
  /** <target dev='vda'> of the owning <disk>. */
  target?: string;
  /** <alias name='virtio-disk0'> of the owning <disk> (live XML only). */
  alias?: string;
  /** disk/@device: disk, lun, cdrom, floppy. */
  device: string;
}

export interface DomainDisks {
  name: string;
  uuid: string;
  disks: DiskRef[];
}

/** The domain XML cannot be used; the message names the domain (when known) and the problem. */
export class DomainXmlError extends Error {
  override name = 'DomainXmlError';
}

export function parseDomainXml(xml: string): DomainDisks {
  let domainName: string | undefined;
  try {
    if (typeof xml !== 'string') {
      throw new DomainXmlError(`domain XML must be a string, got ${xml === null ? 'null' : typeof xml}`);
    }
    const root = readRoot(xml);
    domainName = readName(root);
    const uuid = readUuid(root, domainName);
    return { name: domainName, uuid, disks: readDisks(root) };
  } catch (error) {
    if (error instanceof DomainXmlError) {
      throw error;
    }
    // An XML value error found while reading (an undefined entity, say), or a bug: either
    // way callers get the one error type they handle, naming the domain when known.
    const reason = error instanceof Error ? error.message : String(error);
    throw new DomainXmlError(`${describeDomain(domainName)} cannot be read: ${reason}`);
  }
}

function describeDomain(name: string | undefined): string {
  return name === undefined ? 'domain XML' : `domain XML of "${name}"`;
}

function readRoot(xml: string): XmlElement {
  let root: XmlElement;
  try {
    root = parseXmlDocument(xml);
  } catch (error) {
    if (error instanceof XmlSyntaxError) {
      throw new DomainXmlError(`domain XML is not well-formed: ${error.message}`);
    }
    throw error;
  }
  if (root.name !== 'domain') {
    throw new DomainXmlError(`domain XML has the root element <${root.name}>, expected <domain>`);
  }
  return root;
}

function readName(root: XmlElement): string {
  const element = firstChild(root, 'name');
  if (element === undefined) {
    throw new DomainXmlError('domain XML has no <name>');
  }
  // Kept exactly as written: it must match the name libvirt reports elsewhere.
  if (element.text.trim() === '') {
    throw new DomainXmlError('domain XML has an empty <name>');
  }
  return element.text;
}

function readUuid(root: XmlElement, domainName: string): string {
  const element = firstChild(root, 'uuid');
  if (element === undefined) {
    throw new DomainXmlError(`${describeDomain(domainName)} has no <uuid>`);
  }
  const uuid = canonicalUuid(element.text);
  if (uuid === undefined) {
    throw new DomainXmlError(`${describeDomain(domainName)} has an invalid <uuid> "${element.text}"`);
  }
  return uuid;
}

/** libvirt reads ./devices/disk: every <disk> of every <devices>, and nothing elsewhere (e.g. <metadata>). */
function readDisks(root: XmlElement): DiskRef[] {
  return childElements(root, 'devices').flatMap((devices) => childElements(devices, 'disk').flatMap(refsOfDisk));
}

function refsOfDisk(disk: XmlElement): DiskRef[] {
  const device = nonEmpty(disk.attributes.get('device')) ?? 'disk';
  // libvirt makes every cdrom read-only; QEMU then opens it read-only, so sh is enough.
  const readOnly =
    firstChild(disk, 'readonly') !== undefined || firstChild(disk, 'shareable') !== undefined || device === 'cdrom';
  const mode: LockMode = readOnly ? 'sh' : 'ex';
  const owner = ownerFields(disk, device);
  const refs: DiskRef[] = [];
  const add = (source: DiskSource | undefined, role: DiskRef['role'], refMode: LockMode): void => {
    if (source !== undefined) {
      refs.push({ source, mode: refMode, role, ...owner });
    }
  };

  // libvirt's default disk type is 'file'.
  const type = disk.attributes.get('type') ?? 'file';
  add(sourceOf(type, firstChild(disk, 'source')), 'disk', mode);
  // Backing images are opened read-only and often shared by several domains.
  for (const source of backingChain(disk)) {
    add(source, 'backing', 'sh');
  }

  const mirror = firstChild(disk, 'mirror');
  if (mirror !== undefined) {
    // The job writes the mirror as it would write the disk, so it needs the disk's mode.
    add(mirrorSource(mirror), 'mirror', mode);
    for (const source of backingChain(mirror)) {
      add(source, 'backing', 'sh');
    }
  }
  return refs;
}

function ownerFields(disk: XmlElement, device: string): Pick<DiskRef, 'target' | 'alias' | 'device'> {
  const target = nonEmpty(firstChild(disk, 'target')?.attributes.get('dev'));
  const alias = nonEmpty(firstChild(disk, 'alias')?.attributes.get('name'));
  return {
    ...(target === undefined ? {} : { target }),
    ...(alias === undefined ? {} : { alias }),
    device,
  };
}

/**
 * The sources of the chain below `element` (a <disk>, <mirror> or <backingStore>), top
 * first. Iterative, since a chain may be hundreds of images long. A <backingStore> without
 * a type (usually the empty <backingStore/>) ends the chain, as in libvirt.
 */
function backingChain(element: XmlElement): (DiskSource | undefined)[] {
  const sources: (DiskSource | undefined)[] = [];
  let current = firstChild(element, 'backingStore');
  while (current !== undefined) {
    const type = current.attributes.get('type');
    if (type === undefined) {
      break;
    }
    sources.push(sourceOf(type, firstChild(current, 'source')));
    current = firstChild(current, 'backingStore');
  }
  return sources;
}

/**
 * A mirror with a type attribute describes its target in <source>, like a disk; without one
 * it is the old form, a file named by its `file` attribute.
 */
function mirrorSource(mirror: XmlElement): DiskSource | undefined {
  const type = mirror.attributes.get('type');
  if (type !== undefined) {
    return sourceOf(type, firstChild(mirror, 'source'));
  }
  return filePath(mirror.attributes.get('file'));
}

/** The source of a disk, backing image or mirror of storage type `type`, if it can be an LV. */
function sourceOf(type: string, source: XmlElement | undefined): DiskSource | undefined {
  if (source === undefined) {
    return undefined;
  }
  switch (type) {
    case 'block': {
      const dev = nonEmpty(source.attributes.get('dev'));
      return dev === undefined ? undefined : { kind: 'path', path: dev };
    }
    case 'file':
      return filePath(source.attributes.get('file'));
    case 'volume': {
      const pool = nonEmpty(source.attributes.get('pool'));
      const volume = nonEmpty(source.attributes.get('volume'));
      return pool === undefined || volume === undefined ? undefined : { kind: 'volume', pool, volume };
    }
    default:
      // network, nvme, vhostuser, vhostvdpa, dir: never an LV.
      return undefined;
  }
}

/** A file source counts only when it is a device node path: libvirt lets a file disk name a block device. */
function filePath(file: string | undefined): DiskSource | undefined {
  const path = nonEmpty(file);
  return path !== undefined && isDevPath(path) ? { kind: 'path', path } : undefined;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
