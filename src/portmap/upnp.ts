// A small UPnP IGD client: SSDP discovery of our gateway, its description, and the three SOAP
// actions a mapping needs (AddPortMapping / AddAnyPortMapping, GetExternalIPAddress,
// DeletePortMapping) on WANIPConnection:2 or :1.
//
// Confined on purpose: the M-SEARCH goes to the gateway itself (unicast) and, for routers that
// answer only multicast, to the SSDP group on the gateway's interface alone with TTL 2; only
// answers from the gateway's address count, and only description and control URLs on the
// gateway's address are fetched. Answers are size-bounded and parsed defensively: a hostile
// LAN device can make UPnP unavailable, never make us talk to anyone else or crash.
import type { Socket } from 'node:dgram';
import { exchange } from './udp-exchange.js';

export const SSDP_PORT = 1900;
const SSDP_GROUP = '239.255.255.250';
const SEARCH_TARGET = 'urn:schemas-upnp-org:device:InternetGatewayDevice:1';
const MAX_BODY = 64 * 1024;
const SERVICES = [
  'urn:schemas-upnp-org:service:WANIPConnection:2',
  'urn:schemas-upnp-org:service:WANIPConnection:1',
  'urn:schemas-upnp-org:service:WANPPPConnection:1',
] as const;

export interface UpnpService {
  readonly serviceType: string;
  readonly controlUrl: string;
}

/** A SOAP fault from the router (UPnP error code and description), or a transport failure. */
export class UpnpError extends Error {
  constructor(
    message: string,
    readonly code: number | null = null,
  ) {
    super(message);
    this.name = 'UpnpError';
  }
}

export interface SsdpOptions {
  readonly localAddress: string;
  readonly gateway: string;
  readonly port?: number;
  /** Also search the SSDP multicast group on the gateway's interface (default true). */
  readonly multicast?: boolean;
  readonly timeoutMs: number;
}

/** The LOCATION of an SSDP response, or null when it is not one. */
export function parseSsdpResponse(text: string): string | null {
  if (!/^HTTP\/1\.[01] 200/i.test(text)) return null;
  const m = /^location:[ \t]*(\S+)[ \t]*$/im.exec(text);
  return m ? m[1]! : null;
}

/** Whether `url` is plain HTTP to the gateway's address (the only place we fetch from). */
export function onGateway(url: string, gateway: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' && u.hostname === gateway;
  } catch {
    return false;
  }
}

/** Sends M-SEARCH and resolves with the first description URL the gateway gives, or null. */
export function ssdpSearch(o: SsdpOptions): Promise<string | null> {
  const msg = Buffer.from(
    `M-SEARCH * HTTP/1.1\r\nHOST: ${SSDP_GROUP}:1900\r\nST: ${SEARCH_TARGET}\r\nMAN: "ssdp:discover"\r\nMX: 1\r\n\r\n`,
  );
  const port = o.port ?? SSDP_PORT;
  return exchange({
    localAddress: o.localAddress,
    to: { address: o.gateway, port },
    anyPort: true,
    request: msg,
    sendAtMs: [0],
    timeoutMs: o.timeoutMs,
    // For routers that answer only multicast: the group, on the gateway's interface alone, TTL 2.
    ...((o.multicast ?? true)
      ? {
          alsoSend: (sock: Socket) => {
            sock.setMulticastInterface(o.localAddress);
            sock.setMulticastTTL(2);
            sock.send(msg, port, SSDP_GROUP, () => undefined);
          },
        }
      : {}),
    decode: (m) => {
      if (m.length > 8192) return null;
      const location = parseSsdpResponse(m.toString('latin1'));
      return location && onGateway(location, o.gateway) ? location : null;
    },
  });
}

function decodeEntities(s: string): string {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The first WAN connection service of a device description, with its control URL made absolute. */
export function findWanService(descriptionXml: string, location: string): UpnpService | null {
  const services = [...descriptionXml.matchAll(/<service>([\s\S]*?)<\/service>/g)].map((m) => m[1]!);
  for (const want of SERVICES) {
    for (const s of services) {
      const type = /<serviceType>\s*([^<]*?)\s*<\/serviceType>/.exec(s)?.[1];
      const control = /<controlURL>\s*([^<]*?)\s*<\/controlURL>/.exec(s)?.[1];
      if (type !== want || !control) continue;
      try {
        return { serviceType: want, controlUrl: new URL(decodeEntities(control), location).href };
      } catch {
        return null;
      }
    }
  }
  return null;
}

/** Reads at most MAX_BODY bytes of a response body. */
async function boundedText(res: Response): Promise<string> {
  const reader = res.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > MAX_BODY) {
      await reader.cancel();
      throw new UpnpError('the router sent an oversized answer');
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function fetchWanService(location: string, gateway: string, timeoutMs: number): Promise<UpnpService> {
  if (!onGateway(location, gateway)) throw new UpnpError('the description is not on the gateway');
  let text: string;
  try {
    const res = await fetch(location, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
    if (!res.ok) throw new UpnpError(`description: HTTP ${res.status}`);
    text = await boundedText(res);
  } catch (err) {
    throw err instanceof UpnpError ? err : new UpnpError(`description: ${(err as Error).message}`);
  }
  const service = findWanService(text, location);
  if (!service) throw new UpnpError('the gateway offers no WANIPConnection service');
  if (!onGateway(service.controlUrl, gateway)) throw new UpnpError('the control URL is not on the gateway');
  return service;
}

/** The values of the elements of a SOAP response body, by element name (without prefixes). */
export function parseSoapValues(xml: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of xml.matchAll(/<(?:[\w-]+:)?(\w+)>([^<]*)<\/(?:[\w-]+:)?\1>/g)) out.set(m[1]!, decodeEntities(m[2]!.trim()));
  return out;
}

export async function soapCall(
  service: UpnpService,
  action: string,
  args: ReadonlyArray<readonly [string, string | number]>,
  timeoutMs: number,
): Promise<Map<string, string>> {
  const body =
    '<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">' +
    `<s:Body><u:${action} xmlns:u="${service.serviceType}">` +
    args.map(([k, v]) => `<${k}>${escapeXml(String(v))}</${k}>`).join('') +
    `</u:${action}></s:Body></s:Envelope>\r\n`;
  let status: number;
  let text: string;
  try {
    const res = await fetch(service.controlUrl, {
      method: 'POST',
      headers: { 'content-type': 'text/xml; charset="utf-8"', soapaction: `"${service.serviceType}#${action}"` },
      body,
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
    });
    status = res.status;
    text = await boundedText(res);
  } catch (err) {
    throw err instanceof UpnpError ? err : new UpnpError(`${action}: ${(err as Error).message}`);
  }
  const values = parseSoapValues(text);
  if (status !== 200) {
    const code = Number(values.get('errorCode'));
    throw new UpnpError(`${action}: ${values.get('errorDescription') ?? `HTTP ${status}`}`, Number.isInteger(code) ? code : null);
  }
  return values;
}
