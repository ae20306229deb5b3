import { parseDomainXml, type DomainDisks } from './disks.js';

/**
 * Parses a domain XML without holding up the daemon's other work. For now it parses in place;
 * the entry point exists so that callers never depend on how large XML is handled.
 */
export async function parseDomainXmlAsync(xml: string): Promise<DomainDisks> {
  return parseDomainXml(xml);
}
