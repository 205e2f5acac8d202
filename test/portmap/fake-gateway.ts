// A gateway on 127.0.0.1 for loopback tests: PCP and NAT-PMP on one UDP port, an SSDP responder
// and a UPnP IGD (description and SOAP) over HTTP. It keeps a table of mappings, an epoch the test
// can reset (a router restart), and can be told to answer with arbitrary bytes instead.
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeGatewayOptions {
  readonly pcp?: boolean;
  readonly natpmp?: boolean;
  readonly upnp?: boolean;
  readonly externalAddress?: string;
  /** Replace every PCP/NAT-PMP answer with these bytes (hostile-gateway tests). */
  readonly garbage?: () => Uint8Array;
}

export interface FakeGateway {
  readonly pmpPort: number;
  readonly ssdpPort: number;
  /** internal port -> { external port, lifetime, by } */
  readonly mappings: Map<number, { externalPort: number; lifetimeS: number; by: string }>;
  /** Requests seen, by kind ("pcp-map", "natpmp-map", "upnp-add", ...). */
  readonly seen: string[];
  /** The epoch answers carry (s); set it back to simulate a restart. */
  epochS: number;
  garbage: (() => Uint8Array) | null;
  close(): Promise<void>;
}

function bind(s: Socket): Promise<number> {
  return new Promise((resolve) => s.bind(0, '127.0.0.1', () => resolve(s.address().port)));
}

export async function startFakeGateway(o: FakeGatewayOptions = {}): Promise<FakeGateway> {
  const ext = o.externalAddress ?? '203.0.113.77';
  const pmp = createSocket('udp4');
  const ssdp = createSocket('udp4');
  const gw: FakeGateway = {
    pmpPort: await bind(pmp),
    ssdpPort: await bind(ssdp),
    mappings: new Map(),
    seen: [],
    epochS: 1000,
    garbage: o.garbage ?? null,
    close: async () => {
      pmp.close();
      ssdp.close();
      await new Promise((r) => http.close(r));
    },
  };
  const extBytes = ext.split('.').map(Number);
  pmp.on('message', (m, r) => {
    const reply = (b: Uint8Array): void => void pmp.send(b, r.port, r.address);
    if (gw.garbage) return reply(gw.garbage());
    if (m[0] === 0 && o.natpmp !== false) {
      const op = m[1]!;
      const head = Buffer.alloc(op === 0 ? 12 : 16);
      head[1] = 128 + op;
      head.writeUInt32BE(gw.epochS, 4);
      if (op === 0) {
        gw.seen.push('natpmp-external');
        head.set(extBytes, 8);
      } else {
        const internal = m.readUInt16BE(4);
        const life = m.readUInt32BE(8);
        gw.seen.push(life === 0 ? 'natpmp-delete' : 'natpmp-map');
        if (life === 0) gw.mappings.delete(internal);
        else gw.mappings.set(internal, { externalPort: internal + 1, lifetimeS: life, by: 'natpmp' });
        head.writeUInt16BE(internal, 8);
        head.writeUInt16BE(life === 0 ? 0 : internal + 1, 10);
        head.writeUInt32BE(life, 12);
      }
      return reply(head);
    }
    if (m[0] === 2 && o.pcp !== false) {
      const op = m[1]! & 0x7f;
      const life = m.readUInt32BE(4);
      const out = Buffer.alloc(op === 1 ? 60 : 24);
      out[0] = 2;
      out[1] = 0x80 | op;
      out.writeUInt32BE(life, 4);
      out.writeUInt32BE(gw.epochS, 8);
      if (op === 1) {
        const internal = m.readUInt16BE(40);
        gw.seen.push(life === 0 ? 'pcp-delete' : 'pcp-map');
        if (life === 0) gw.mappings.delete(internal);
        else gw.mappings.set(internal, { externalPort: internal + 2, lifetimeS: life, by: 'pcp' });
        m.copy(out, 24, 24, 60);
        out.writeUInt16BE(internal + 2, 42);
        out.fill(0, 44, 60);
        out[54] = 0xff;
        out[55] = 0xff;
        out.set(extBytes, 56);
      } else gw.seen.push('pcp-announce');
      return reply(out);
    }
    if (m[0] === 2) reply(Uint8Array.of(0, 128 + (m[1]! & 0x7f), 0, 1, 0, 0, 0, 0)); // NAT-PMP only: unsupported version
  });

  const http: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      if (req.method === 'GET' && req.url === '/rootDesc.xml') {
        res.end('<root><device><serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><controlURL>/ctl</controlURL></service></serviceList></device></root>');
        return;
      }
      const action = /#(\w+)"/.exec(String(req.headers.soapaction))?.[1] ?? '';
      const val = (k: string): string => new RegExp(`<${k}>([^<]*)</${k}>`).exec(body)?.[1] ?? '';
      gw.seen.push(`upnp-${action}`);
      if (action === 'AddPortMapping') {
        if (val('NewLeaseDuration') === '0') return void res.writeHead(500).end('<errorCode>725</errorCode>');
        gw.mappings.set(Number(val('NewInternalPort')), { externalPort: Number(val('NewExternalPort')), lifetimeS: Number(val('NewLeaseDuration')), by: 'upnp' });
      } else if (action === 'DeletePortMapping') {
        for (const [k, v] of gw.mappings) if (v.by === 'upnp' && v.externalPort === Number(val('NewExternalPort'))) gw.mappings.delete(k);
      }
      res.end(`<s:Envelope><s:Body><u:${action}Response><NewExternalIPAddress>${ext}</NewExternalIPAddress></u:${action}Response></s:Body></s:Envelope>`);
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const httpPort = (http.address() as AddressInfo).port;
  ssdp.on('message', (m, r) => {
    if (o.upnp === false || !m.toString().startsWith('M-SEARCH')) return;
    ssdp.send(`HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nLOCATION: http://127.0.0.1:${httpPort}/rootDesc.xml\r\n\r\n`, r.port, r.address);
  });
  return gw;
}

export const LOOPBACK_GATEWAY = { address: '127.0.0.1', localAddress: '127.0.0.1', ifName: 'lo' };

/** PortMapClient options that point at the fake gateway (unicast only: no multicast in loopback tests). */
export function clientOptions(gw: FakeGateway, probeMs = 250): { pcpPort: number; natpmpPort: number; ssdpPort: number; ssdpMulticast: false; probeMs: number; requestMs: number } {
  return { pcpPort: gw.pmpPort, natpmpPort: gw.pmpPort, ssdpPort: gw.ssdpPort, ssdpMulticast: false, probeMs, requestMs: 500 };
}
