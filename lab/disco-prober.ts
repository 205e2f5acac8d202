// A stand-alone disco prober for lab tests, run inside a namespace:
//   node disco-prober.js <peer key hex> <ip:port> [key file] [count] [listen ms]
// Sends `count` sealed disco pings (sealed with the key in `key file`, or a fresh key) straight to
// the address, listens, and prints one JSON line: how many authentic pongs came back, and from where.
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { DiscoSealer } from '../src/disco/index.js';
import { NodeKey } from '../src/identity/node-key.js';
import { splitEndpoint } from '../src/net/endpoint.js';

const [peerHex, target, keyFile, countText, listenText] = process.argv.slice(2);
const to = target ? splitEndpoint(target) : null;
if (!peerHex || !to) {
  process.stderr.write('usage: disco-prober <peer key hex> <ip:port> [key file|-] [count] [listen ms]\n');
  process.exit(2);
}
const key = keyFile && keyFile !== '-' ? NodeKey.loadOrCreate(keyFile) : NodeKey.generate();
const sealer = new DiscoSealer(key);
const count = Number(countText ?? 5);
const listenMs = Number(listenText ?? 1500);

const sock = createSocket('udp4');
const got = { datagrams: 0, pongs: 0, pings: 0, from: [] as string[] };
sock.on('message', (m, r) => {
  got.datagrams++;
  const o = sealer.open(m, (k) => k === peerHex);
  if (!o) return;
  if (o.message.type === 'pong') got.pongs++;
  if (o.message.type === 'ping') got.pings++;
  const from = `${r.address}:${r.port}`;
  if (!got.from.includes(from)) got.from.push(from);
});
sock.bind(0);
await once(sock, 'listening');
for (let i = 0; i < count; i++) {
  sock.send(sealer.seal(peerHex, { type: 'ping', txid: randomBytes(12) }), to.port, to.address);
  await new Promise((r) => setTimeout(r, 100));
}
await new Promise((r) => setTimeout(r, listenMs));
sock.close();
process.stdout.write(`${JSON.stringify({ key: key.publicHex, sent: count, ...got })}\n`);
