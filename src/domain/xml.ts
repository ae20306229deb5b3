/**
 * Reads an XML document into a small immutable element tree.
 *
 * The input is untrusted in the sense that anyone allowed to define a domain writes it, so
 * the reader is deliberately conservative: well-formedness is checked first, entity
 * references are decoded here (only the five predefined ones and character references;
 * DOCTYPE-declared entities are never expanded, so no "billion laughs" and no external
 * entities), nesting depth is bounded, and element names that are special in JavaScript
 * objects (`__proto__`, `constructor`, ...) cannot reach an object key of ours.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';

export interface XmlElement {
  readonly name: string;
  readonly attributes: ReadonlyMap<string, string>;
  /** Child elements in document order (text, CDATA and comments are not elements). */
  readonly children: readonly XmlElement[];
  /** Character data directly inside this element, entity references decoded, CDATA verbatim. */
  readonly text: string;
}

/** The document is not well-formed XML, or not a single root element. */
export class XmlSyntaxError extends Error {
  override name = 'XmlSyntaxError';
}

/**
 * Deeper than libxml2 accepts even with XML_PARSE_HUGE (2048), so any document libvirt
 * itself could have produced (a long backing chain nests one level per image) fits.
 */
const MAX_DEPTH = 2100;

const ATTRIBUTE_PREFIX = '@_';
const ATTRIBUTES_KEY = ':@';
const TEXT_KEY = '#text';
const CDATA_KEY = '#cdata';
/** Renamed element names start with '#', which no XML name can, so they never collide. */
const ESCAPED_NAME_PREFIX = '#element:';
const PROTOTYPE_NAMES = new Set(['__proto__', 'constructor', 'prototype']);

const parser = new XMLParser({
  // Keeps every element in document order as its own array entry, so repeated elements
  // (several <disk>, a nested <backingStore>) never collapse into one value or change shape.
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: ATTRIBUTE_PREFIX,
  allowBooleanAttributes: false,
  cdataPropName: CDATA_KEY,
  textNodeName: TEXT_KEY,
  // Values stay strings: a domain called "007" must not become the number 7.
  parseTagValue: false,
  parseAttributeValue: false,
  // Values stay exact: a path is used as written.
  trimValues: false,
  // Entity references are decoded by decodeCharacterData below, never by the parser.
  processEntities: false,
  htmlEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  maxNestedTags: MAX_DEPTH,
  transformTagName: (name: string) => (PROTOTYPE_NAMES.has(name) ? ESCAPED_NAME_PREFIX + name : name),
  onDangerousProperty: (name: string) => ESCAPED_NAME_PREFIX + name,
});

/** Parses `xml` and returns its root element; throws XmlSyntaxError when it is not well-formed. */
export function parseXmlDocument(xml: string): XmlElement {
  const source = xml.startsWith('\uFEFF') ? xml.slice(1) : xml;
  if (source.trim() === '') {
    throw new XmlSyntaxError('the document is empty');
  }
  const verdict = XMLValidator.validate(source, { allowBooleanAttributes: false });
  if (verdict !== true) {
    const { msg, line, col } = verdict.err;
    throw new XmlSyntaxError(`${msg} (line ${line}${col === undefined ? '' : `, column ${col}`})`);
  }
  let nodes: unknown;
  try {
    nodes = parser.parse(source);
  } catch (error) {
    throw new XmlSyntaxError(error instanceof Error ? error.message : String(error));
  }
  const roots = asNodeList(nodes).filter((node) => nodeKey(node) !== TEXT_KEY);
  if (roots.length !== 1) {
    throw new XmlSyntaxError(`the document has ${roots.length} root elements, expected exactly one`);
  }
  return toElement(roots[0]!);
}

/** All child elements of `element` named `name`, in document order. */
export function childElements(element: XmlElement, name: string): XmlElement[] {
  return element.children.filter((child) => child.name === name);
}

/** The first child element named `name`: libvirt, like XPath `./name`, reads the first one. */
export function firstChild(element: XmlElement | undefined, name: string): XmlElement | undefined {
  return element?.children.find((child) => child.name === name);
}

type ParsedNode = Record<string, unknown>;

function asNodeList(value: unknown): ParsedNode[] {
  if (!Array.isArray(value)) {
    throw new XmlSyntaxError('the XML parser returned an unexpected structure');
  }
  return value.filter((item): item is ParsedNode => typeof item === 'object' && item !== null);
}

function nodeKey(node: ParsedNode): string {
  const key = Object.keys(node).find((k) => k !== ATTRIBUTES_KEY);
  if (key === undefined) {
    throw new XmlSyntaxError('the XML parser returned a node without a name');
  }
  return key;
}

function toElement(node: ParsedNode): XmlElement {
  const key = nodeKey(node);
  const name = key.startsWith(ESCAPED_NAME_PREFIX) ? key.slice(ESCAPED_NAME_PREFIX.length) : key;
  const attributes = readAttributes(name, node[ATTRIBUTES_KEY]);
  const children: XmlElement[] = [];
  let text = '';
  for (const child of asNodeList(node[key])) {
    const childKey = nodeKey(child);
    if (childKey === TEXT_KEY) {
      text += decodeCharacterData(String(child[TEXT_KEY]), `the text of <${name}>`);
    } else if (childKey === CDATA_KEY) {
      text += asNodeList(child[CDATA_KEY])
        .map((part) => String(part[TEXT_KEY] ?? ''))
        .join('');
    } else {
      children.push(toElement(child));
    }
  }
  return { name, attributes, children, text };
}

function readAttributes(elementName: string, value: unknown): Map<string, string> {
  const attributes = new Map<string, string>();
  if (typeof value !== 'object' || value === null) {
    return attributes;
  }
  for (const [key, raw] of Object.entries(value)) {
    const attributeName = key.startsWith(ATTRIBUTE_PREFIX) ? key.slice(ATTRIBUTE_PREFIX.length) : key;
    const where = `attribute ${attributeName} of <${elementName}>`;
    const literal = String(raw);
    if (literal.includes('<')) {
      throw new XmlSyntaxError(`${where} contains '<', which XML does not allow in attribute values`);
    }
    attributes.set(attributeName, decodeCharacterData(normaliseAttributeWhitespace(literal), where));
  }
  return attributes;
}

/** XML 1.0 §3.3.3: literal line breaks and tabs in an attribute value read as spaces. */
function normaliseAttributeWhitespace(literal: string): string {
  return literal.replace(/\r\n?/g, '\n').replace(/[\t\n]/g, ' ');
}

const PREDEFINED_ENTITIES: Readonly<Record<string, string>> = {
  lt: '<',
  gt: '>',
  amp: '&',
  apos: "'",
  quot: '"',
};

const REFERENCE = /&(?:#x([0-9A-Fa-f]+)|#([0-9]+)|([A-Za-z_:][A-Za-z0-9_.:-]*))?;?/g;

function decodeCharacterData(raw: string, where: string): string {
  return raw.replace(REFERENCE, (match: string, hex?: string, decimal?: string, entity?: string) => {
    if (!match.endsWith(';') || match === '&;') {
      throw new XmlSyntaxError(`${where} contains '&' that does not start an entity or character reference`);
    }
    if (entity !== undefined) {
      const replacement = Object.hasOwn(PREDEFINED_ENTITIES, entity) ? PREDEFINED_ENTITIES[entity] : undefined;
      if (replacement === undefined) {
        throw new XmlSyntaxError(`${where} uses the entity &${entity}; which is not one of XML's predefined entities`);
      }
      return replacement;
    }
    const codePoint = hex !== undefined ? Number.parseInt(hex, 16) : Number.parseInt(decimal ?? '', 10);
    if (!isXmlChar(codePoint)) {
      throw new XmlSyntaxError(`${where} has the character reference ${match}, which is not an XML character`);
    }
    return String.fromCodePoint(codePoint);
  });
}

function isXmlChar(codePoint: number): boolean {
  return (
    codePoint === 0x9 ||
    codePoint === 0xa ||
    codePoint === 0xd ||
    (codePoint >= 0x20 && codePoint <= 0xd7ff) ||
    (codePoint >= 0xe000 && codePoint <= 0xfffd) ||
    (codePoint >= 0x10000 && codePoint <= 0x10ffff)
  );
}
