/**
 * Domain XML (live, inactive, or the qemu hook's stdin) to the storage sources whose LVs must
 * be locked, with the mode each one needs.
 *
 * Everything QEMU opens that can be an LV is reported: each disk's own <source>, its backing
 * chain, the target of a running block job (<mirror>), the external data file of any of
 * those (<dataStore>), the UEFI NVRAM store and the host files of persistent-memory devices.
 * Sources that cannot be LVs (network, nvme, vhostuser, dir; relative paths) are left out,
 * and nothing is ever reported as an empty path. Absolute file paths are all kept, since a
 * file path may be a link to an LV; deciding which paths are LVs of managed VGs happens later.
 */
import type { LockMode } from '../locks/lv.js';
import { readMemoryDevices, readNvram } from './nvram-memory.js';
import { backingChain, filePath, nonEmpty, storageSources, type DiskSource, type StorageSources } from './sources.js';
import { canonicalUuid } from './uuid.js';
import { childElements, firstChild, parseXmlDocument, type XmlElement, XmlSyntaxError } from './xml.js';

export type { DiskSource } from './sources.js';

export interface DiskRef {
  source: DiskSource;
  /**
   * 'sh' for <shareable/>, <readonly/>, cdroms, backing images and their data files, and
   * read-only memory devices; otherwise 'ex'.
   */
  mode: LockMode;
  /**
   * What QEMU opens it as: a disk's image, a backing image, a block job's target, the
   * external data file of one of those (datastore), the UEFI variable store, or the host
   * file of a persistent-memory device (nvdimm, virtio-pmem).
   */
  role: 'disk' | 'backing' | 'mirror' | 'datastore' | 'nvram' | 'nvdimm' | 'pmem';
  /** <target dev='vda'> of the owning <disk>. */
  target?: string;
  /** <alias name='virtio-disk0'> of the owning <disk> or memory device (live XML only). */
  alias?: string;
  /** disk/@device (disk, lun, cdrom, floppy); 'nvram'; or the memory device's model. */
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
    return { name: domainName, uuid, disks: [...readDisks(root), ...readNvram(root), ...readMemoryDevices(root)] };
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
  // A layer's external data file holds the layer's guest data, so QEMU opens it as it opens
  // the layer: written for the top image (and the mirror), read-only for backing images.
  const add = ({ image, dataStore }: StorageSources, role: DiskRef['role'], refMode: LockMode): void => {
    if (image !== undefined) {
      refs.push({ source: image, mode: refMode, role, ...owner });
    }
    if (dataStore !== undefined) {
      refs.push({ source: dataStore, mode: refMode, role: 'datastore', ...owner });
    }
  };

  // libvirt's default disk type is 'file'.
  const type = disk.attributes.get('type') ?? 'file';
  add(storageSources(type, firstChild(disk, 'source')), 'disk', mode);
  // Backing images are opened read-only and often shared by several domains.
  for (const layer of backingChain(disk)) {
    add(layer, 'backing', 'sh');
  }

  const mirror = firstChild(disk, 'mirror');
  if (mirror !== undefined) {
    // The job writes the mirror as it would write the disk, so it needs the disk's mode.
    add(mirrorSources(mirror), 'mirror', mode);
    for (const layer of backingChain(mirror)) {
      add(layer, 'backing', 'sh');
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
 * A mirror with a type attribute describes its target in <source>, like a disk; without one
 * it is the old form, a file named by its `file` attribute.
 */
function mirrorSources(mirror: XmlElement): StorageSources {
  const type = mirror.attributes.get('type');
  if (type !== undefined) {
    return storageSources(type, firstChild(mirror, 'source'));
  }
  const image: DiskSource | undefined = filePath(mirror.attributes.get('file'));
  return image === undefined ? {} : { image };
}
