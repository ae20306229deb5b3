/**
 * Sources QEMU opens outside <disk>: the UEFI variable store (<os><nvram>) and the host
 * files behind persistent-memory devices (<devices><memory model='nvdimm'|'virtio-pmem'>).
 * Either may be an LV, and QEMU writes both, so they need a lock like a disk.
 */
import type { LockMode } from '../locks/lv.js';
import type { DiskRef } from './disks.js';
import { filePath, nonEmpty, storageSources, type DiskSource } from './sources.js';
import { childElements, firstChild, type XmlElement } from './xml.js';

/** Memory device models whose <source><path> QEMU maps from a host file or device. */
const FILE_BACKED_MEMORY_MODELS: Readonly<Record<string, DiskRef['role']>> = {
  nvdimm: 'nvdimm',
  'virtio-pmem': 'pmem',
};

/**
 * The NVRAM of ./os/nvram. With a type attribute (libvirt 8.5 and later) it is described by a
 * <source> like a disk's; without one its text is the path of the store. libvirt has no
 * read-only NVRAM (only the firmware code, <loader readonly='yes'>, is read-only): the
 * firmware writes its variables there, so the store always needs ex.
 */
export function readNvram(root: XmlElement): DiskRef[] {
  const nvram = firstChild(firstChild(root, 'os'), 'nvram');
  if (nvram === undefined) {
    return [];
  }
  const type = nvram.attributes.get('type');
  const sources: DiskSource[] = [];
  if (type === undefined) {
    const path = filePath(nvram.text.trim());
    if (path !== undefined) sources.push(path);
  } else {
    const { image, dataStore } = storageSources(type, firstChild(nvram, 'source'));
    if (image !== undefined) sources.push(image);
    if (dataStore !== undefined) sources.push(dataStore);
  }
  return sources.map((source) => ({ source, mode: 'ex', role: 'nvram', device: 'nvram' }));
}

/**
 * File-backed memory devices of ./devices/memory. QEMU opens the path read-write unless the
 * device is marked <target><readonly/>; access='private' only keeps the guest's writes in
 * private pages, the file is still opened for writing, so it keeps ex.
 */
export function readMemoryDevices(root: XmlElement): DiskRef[] {
  return childElements(root, 'devices').flatMap((devices) =>
    childElements(devices, 'memory').flatMap((memory): DiskRef[] => {
      const model = memory.attributes.get('model') ?? '';
      const role = Object.hasOwn(FILE_BACKED_MEMORY_MODELS, model) ? FILE_BACKED_MEMORY_MODELS[model] : undefined;
      const source = filePath(firstChild(firstChild(memory, 'source'), 'path')?.text.trim());
      if (role === undefined || source === undefined) {
        return [];
      }
      const mode: LockMode = firstChild(firstChild(memory, 'target'), 'readonly') !== undefined ? 'sh' : 'ex';
      const alias = nonEmpty(firstChild(memory, 'alias')?.attributes.get('name'));
      return [{ source, mode, role, device: model, ...(alias === undefined ? {} : { alias }) }];
    }),
  );
}
