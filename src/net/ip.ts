// IP literals to bytes and back, without allocation beyond the result (Node has no inet_pton),
// and which of them are private.
import { isIPv4, isIPv6 } from 'node:net';

/**
 * Writes an IPv4 literal into buf at offset (4 bytes). Returns false if it is not IPv4.
 * Accepts exactly the dotted quads net.isIPv4 accepts: four decimal parts 0-255 without leading
 * zeros ("010.0.0.1" means 8.0.0.1 to inet_aton and 10.0.0.1 elsewhere, so it is refused).
 */
export function writeIPv4(text: string, buf: Uint8Array, offset: number): boolean {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46; // a virtual '.' ends the last part
    if (c >= 48 && c <= 57) {
      if (digits === 1 && value === 0) return false; // a leading zero
      value = value * 10 + (c - 48);
      if (++digits > 3 || value > 255) return false;
    } else if (c === 46) {
      if (digits === 0 || part > 3) return false;
      buf[offset + part++] = value;
      value = 0;
      digits = 0;
    } else return false;
  }
  return part === 4;
}

export function formatIPv4(buf: Uint8Array, offset: number): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

/** Writes an IPv6 literal (RFC 4291 text forms, including an embedded IPv4 tail) into 16 bytes. */
export function writeIPv6(text: string, buf: Uint8Array, offset: number): boolean {
  if (!isIPv6(text)) return false;
  const zone = text.indexOf('%');
  const t = zone === -1 ? text : text.slice(0, zone);
  const halves = t.split('::');
  if (halves.length > 2) return false;
  const head = halves[0] === '' ? [] : (halves[0] ?? '').split(':');
  const tail = halves.length === 2 ? (halves[1] === '' ? [] : (halves[1] ?? '').split(':')) : [];
  const groups: number[] = [];
  const pushGroups = (parts: string[], out: number[]): boolean => {
    for (const p of parts) {
      if (p.includes('.')) {
        const v4 = new Uint8Array(4);
        if (!writeIPv4(p, v4, 0)) return false;
        out.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
      } else out.push(parseInt(p, 16));
    }
    return true;
  };
  const tailGroups: number[] = [];
  if (!pushGroups(head, groups) || !pushGroups(tail, tailGroups)) return false;
  const fill = 8 - groups.length - tailGroups.length;
  if (fill < 0 || (halves.length === 1 && fill !== 0)) return false;
  for (let i = 0; i < fill; i++) groups.push(0);
  groups.push(...tailGroups);
  for (let i = 0; i < 8; i++) {
    const g = groups[i] ?? 0;
    buf[offset + 2 * i] = g >> 8;
    buf[offset + 2 * i + 1] = g & 0xff;
  }
  return true;
}

/** RFC 5952 canonical text: lowercase, longest run (>= 2) of zero groups compressed, first on ties. */
export function formatIPv6(buf: Uint8Array, offset: number): string {
  const g: number[] = new Array<number>(8);
  for (let i = 0; i < 8; i++) g[i] = ((buf[offset + 2 * i] ?? 0) << 8) | (buf[offset + 2 * i + 1] ?? 0);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  // IPv4-mapped addresses read better with their IPv4 tail (RFC 5952 section 5).
  if (bestStart === 0 && bestLen === 5 && g[5] === 0xffff) {
    return `::ffff:${formatIPv4(buf, offset + 12)}`;
  }
  const hex = (from: number, to: number): string =>
    g
      .slice(from, to)
      .map((x) => x.toString(16))
      .join(':');
  if (bestStart === -1) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLen, 8)}`;
}

export function ipFamily(text: string): 4 | 6 | 0 {
  if (isIPv4(text)) return 4;
  if (isIPv6(text)) return 6;
  return 0;
}

/**
 * Whether an address is on a private network (RFC 1918, RFC 6598 shared space, link-local,
 * IPv6 ULA): a path over one is a LAN path, preferred to a public one.
 */
export function isPrivateAddress(address: string): boolean {
  if (address.includes(':')) {
    const a = address.toLowerCase();
    return a.startsWith('fc') || a.startsWith('fd') || a.startsWith('fe80:');
  }
  const [x, y] = address.split('.').map(Number) as [number, number];
  return x === 10 || (x === 172 && y >= 16 && y <= 31) || (x === 192 && y === 168) || (x === 100 && y >= 64 && y <= 127) || (x === 169 && y === 254);
}

/**
 * Whether an IPv6 address can be a candidate a peer dials: global unicast (2000::/3) or
 * unique-local (fc00::/7). Not link-local (fe80::/10, meaningless without its zone on the peer's
 * side), nor anything else outside those two blocks: loopback, unspecified, IPv4-mapped (those
 * are IPv4 candidates already), multicast.
 */
export function isCandidateIPv6(address: string): boolean {
  const b = new Uint8Array(16);
  if (address.includes('%') || !writeIPv6(address, b, 0)) return false;
  const first = b[0]!;
  return (first & 0xe0) === 0x20 || (first & 0xfe) === 0xfc;
}

/** "::ffff:192.0.2.1" (an IPv4 peer as a dual-stack socket shows it) is 192.0.2.1; anything else is itself. */
export function unmapIPv4(address: string): string {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return m ? m[1]! : address;
}
