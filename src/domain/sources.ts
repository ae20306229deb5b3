/**
 * One storage source of domain XML (a disk's, a backing image's, a mirror's, an NVRAM's)
 * to the host paths QEMU opens for it: the image itself and, for a qcow2 image with an
 * external data file, the data file (<source><dataStore>, libvirt 10.10 and later).
 */
import { firstChild, type XmlElement } from './xml.js';

export type DiskSource =
  | { kind: 'path'; path: string } // block dev, or file/other source pointing at a path
  | { kind: 'volume'; pool: string; volume: string }; // <disk type='volume'>

/** What one storage source opens: the image (when it can be an LV) and its data file (likewise). */
export interface StorageSources {
  image?: DiskSource;
  dataStore?: DiskSource;
}

/**
 * The sources of a storage element of type `type` whose <source> is `source`. The data file
 * is read whatever the image's type: a network image may well keep its data on a local LV.
 */
export function storageSources(type: string, source: XmlElement | undefined): StorageSources {
  const image = sourceOf(type, source);
  const dataStoreElement = firstChild(source, 'dataStore');
  const dataStoreType = dataStoreElement?.attributes.get('type');
  const dataStore =
    dataStoreType === undefined ? undefined : sourceOf(dataStoreType, firstChild(dataStoreElement, 'source'));
  return { ...(image === undefined ? {} : { image }), ...(dataStore === undefined ? {} : { dataStore }) };
}

/**
 * The storage sources of the chain below `element` (a <disk>, <mirror> or <backingStore>),
 * top first. Iterative, since a chain may be hundreds of images long. A <backingStore>
 * without a type (usually the empty <backingStore/>) ends the chain, as in libvirt.
 */
export function backingChain(element: XmlElement): StorageSources[] {
  const chain: StorageSources[] = [];
  let current = firstChild(element, 'backingStore');
  while (current !== undefined) {
    const type = current.attributes.get('type');
    if (type === undefined) {
      break;
    }
    chain.push(storageSources(type, firstChild(current, 'source')));
    current = firstChild(current, 'backingStore');
  }
  return chain;
}

/** The source of storage type `type` described by `source`, if it can be an LV. */
export function sourceOf(type: string, source: XmlElement | undefined): DiskSource | undefined {
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

/**
 * A file source counts whenever it is an absolute path: it may be a device node under /dev,
 * or a link elsewhere (/var/lib/libvirt/images/x -> /dev/vg/lv) that only the resolver,
 * which looks at the filesystem, can tell from an ordinary image file.
 */
export function filePath(file: string | undefined): DiskSource | undefined {
  const path = nonEmpty(file);
  return path !== undefined && path.startsWith('/') ? { kind: 'path', path } : undefined;
}

export function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
