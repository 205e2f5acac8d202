// Which addresses a packet may be aimed at: a node sends probes only to unicast addresses, and
// the server passes on only endpoints that name one. Unspecified (0.0.0.0, ::), "this network"
// (0/8), multicast (224/4, ff00::/8) and the reserved and broadcast block (240/4, including
// 255.255.255.255) are never a peer.
import { writeIPv4, writeIPv6 } from './ip.js';
import { splitEndpoint } from './endpoint.js';

export function isUnicastAddress(address: string): boolean {
  const b = new Uint8Array(16);
  if (address.includes(':')) {
    if (!writeIPv6(address, b, 0)) return false;
    if (b.every((x) => x === 0)) return false; // ::
    if (b[0] === 0xff) return false; // multicast
    // An IPv4-mapped address is judged as the IPv4 address it carries.
    if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return unicastV4(b.subarray(12));
    return true;
  }
  if (!writeIPv4(address, b, 0)) return false;
  return unicastV4(b.subarray(0, 4));
}

function unicastV4(b: Uint8Array): boolean {
  const first = b[0]!;
  return first !== 0 && first < 224;
}

/** An endpoint ("ip:port", "[v6]:port") a packet may be sent to: a unicast IP and a port 1-65535. */
export function isUsableEndpoint(text: string): boolean {
  const ep = splitEndpoint(text);
  return ep !== null && isUnicastAddress(ep.address);
}
