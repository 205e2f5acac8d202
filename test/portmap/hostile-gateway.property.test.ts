// Property tests: whatever bytes a gateway (or anyone on the LAN) sends back, the decoders return
// a value or null and the client and keeper never throw or crash the process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeNatPmpResponse } from '../../src/portmap/natpmp.js';
import { decodePcpResponse } from '../../src/portmap/pcp.js';
import { PortMapClient, PortMapError } from '../../src/portmap/client.js';
import { PortMapKeeper } from '../../src/portmap/keeper.js';
import { parseSoapValues, parseSsdpResponse, findWanService } from '../../src/portmap/upnp.js';
import { parseDefaultRoute } from '../../src/portmap/gateway.js';
import { clientOptions, LOOPBACK_GATEWAY, startFakeGateway } from './fake-gateway.js';

test('the decoders never throw on arbitrary bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 1200 }), (b) => {
      decodeNatPmpResponse(b);
      decodePcpResponse(b);
    }),
    { numRuns: 5000 },
  );
});

test('the decoders never throw on near-valid answers (right version and opcode, random rest)', () => {
  fc.assert(
    fc.property(fc.constantFrom(0, 2), fc.constantFrom(0x80, 0x81, 0x82), fc.uint8Array({ maxLength: 120 }), (v, op, rest) => {
      const b = Uint8Array.of(v, op, ...rest);
      decodeNatPmpResponse(b);
      decodePcpResponse(b);
    }),
    { numRuns: 5000 },
  );
});

test('the text parsers never throw on arbitrary text', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 400 }), (s) => {
      parseSsdpResponse(s);
      parseSoapValues(s);
      findWanService(s, 'http://192.168.1.1/');
      parseDefaultRoute(s);
    }),
    { numRuns: 2000 },
  );
});

test('a gateway answering garbage: probe reports, map fails with PortMapError, nothing else escapes', async () => {
  const gw = await startFakeGateway({ upnp: false });
  try {
    const client = new PortMapClient({ ...clientOptions(gw, 60), requestMs: 120, gateway: LOOPBACK_GATEWAY });
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 80 }), fc.uint8Array({ minLength: 8, maxLength: 64 }).map((b) => Uint8Array.of(b[0]! & 2, 0x80 | (b[1]! & 1), ...b.subarray(2)))), async (bytes) => {
        gw.garbage = () => bytes;
        const p = await client.probe();
        for (const k of ['pcp', 'natpmp', 'upnp'] as const) assert.equal(typeof p[k].available, 'boolean');
        for (const proto of ['pcp', 'natpmp'] as const) {
          try {
            const m = await client.map(proto, 4000, 7200, p);
            // A garbage answer that happens to decode as a success must still be a usable mapping.
            assert.ok(m.externalPort > 0 && m.externalPort < 65536);
          } catch (err) {
            assert.ok(err instanceof PortMapError, String(err));
          }
        }
      }),
      { numRuns: 12 },
    );
  } finally {
    await gw.close();
  }
});

test('a keeper facing a garbage gateway keeps running and reports no mapping', async () => {
  const gw = await startFakeGateway({ upnp: false, garbage: () => Uint8Array.of(0, 129, 0, 0, 1) });
  const keeper = new PortMapKeeper({ internalPort: 4000, gateway: () => LOOPBACK_GATEWAY, client: clientOptions(gw, 60), tickMs: 20, announcements: false, onChange: () => undefined });
  try {
    await keeper.ready;
    assert.equal(keeper.mapping, null);
  } finally {
    await keeper.close();
    await gw.close();
  }
});
