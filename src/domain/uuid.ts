/**
 * The canonical form (lowercase 8-4-4-4-12) of a domain UUID as libvirt reads it, or
 * undefined when libvirt would reject it.
 *
 * libvirt's parser is liberal: surrounding whitespace, and '-' or ' ' between pairs of hex
 * digits, as long as there are exactly 32 digits. It always prints the canonical form, which
 * is also what libvirt-dbus reports, so canonicalising lets a domain be matched by UUID
 * whichever source named it.
 */
export function canonicalUuid(text: string): string | undefined {
  const body = text.trim();
  const digits: string[] = [];
  let i = 0;
  while (digits.length < 16) {
    const c = body[i];
    if (c === undefined) {
      return undefined;
    }
    if (c === '-' || c === ' ') {
      i += 1;
      continue;
    }
    const pair = body.slice(i, i + 2);
    if (!/^[0-9A-Fa-f]{2}$/.test(pair)) {
      return undefined;
    }
    digits.push(pair.toLowerCase());
    i += 2;
  }
  if (i !== body.length) {
    return undefined;
  }
  const hex = digits.join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
