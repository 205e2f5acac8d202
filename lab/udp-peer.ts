// A tiny UDP peer that lab tests run inside a namespace (`ip netns exec NS node udp-peer.js`):
// one socket, driven by JSON lines on stdin, reporting JSON lines on stdout. It asks a STUN
// server for its mapping (a minimal RFC 8489 Binding request, deliberately independent of
// src/stun so the lab can judge that code) and sends/receives plain datagrams, which is all a
// hole-punching or hairpinning check needs.
// Usage: udp-peer.js [PORT] [6]   (6: an IPv6 socket; plain datagrams only, STUN is IPv4)
//   in:  {"cmd":"stun","server":"203.0.113.10:3478"}   {"cmd":"send","to":"ip:port","data":"hi"}
//   out: {"event":"listening","port":N}  {"event":"mapped","address":"ip:port"}
//        {"event":"stun-timeout"}  {"event":"recv","from":"ip:port","data":"hi"}
import { createSocket, type RemoteInfo } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';

const MAGIC = 0x2112a442;
const XOR_MAPPED_ADDRESS = 0x0020;

function emit(o: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(o) + '\n');
}

function split(hostPort: string): [string, number] {
  const i = hostPort.lastIndexOf(':');
  return [hostPort.slice(0, i).replace(/^\[(.*)\]$/, '$1'), Number(hostPort.slice(i + 1))];
}

/** XOR-MAPPED-ADDRESS (IPv4) of a Binding success response, or undefined if not one. */
function mappedAddress(msg: Buffer, txid: Buffer): string | undefined {
  if (msg.length < 20 || msg.readUInt16BE(0) !== 0x0101 || msg.readUInt32BE(4) !== MAGIC) return undefined;
  if (!msg.subarray(8, 20).equals(txid)) return undefined;
  let off = 20;
  while (off + 4 <= msg.length) {
    const type = msg.readUInt16BE(off);
    const len = msg.readUInt16BE(off + 2);
    if (type === XOR_MAPPED_ADDRESS && len >= 8 && msg[off + 5] === 0x01) {
      const port = msg.readUInt16BE(off + 6) ^ (MAGIC >>> 16);
      const a = (msg.readUInt32BE(off + 8) ^ MAGIC) >>> 0;
      return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}:${port}`;
    }
    off += 4 + len + ((4 - (len % 4)) % 4);
  }
  return undefined;
}

// argv[3] "6": an IPv6 socket (addresses reported as "[ip]:port"); IPv4 otherwise.
const v6 = process.argv[3] === '6';
const sock = createSocket(v6 ? 'udp6' : 'udp4');
const fmt = (address: string, port: number): string => (address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`);
let pending: { txid: Buffer; timer: NodeJS.Timeout } | undefined;

sock.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
  if (pending) {
    const mapped = mappedAddress(msg, pending.txid);
    if (mapped) {
      clearInterval(pending.timer);
      pending = undefined;
      emit({ event: 'mapped', address: mapped });
      return;
    }
  }
  emit({ event: 'recv', from: fmt(rinfo.address, rinfo.port), data: msg.toString('utf8') });
});

function stun(server: string): void {
  const [host, port] = split(server);
  const txid = randomBytes(12);
  const req = Buffer.alloc(20);
  req.writeUInt16BE(0x0001, 0);
  req.writeUInt32BE(MAGIC, 4);
  txid.copy(req, 8);
  let tries = 0;
  const send = (): void => {
    if (++tries > 10) {
      if (pending) clearInterval(pending.timer);
      pending = undefined;
      emit({ event: 'stun-timeout', server });
      return;
    }
    sock.send(req, port, host);
  };
  pending = { txid, timer: setInterval(send, 200) };
  send();
}

sock.bind(Number(process.argv[2] ?? 0), () => {
  emit({ event: 'listening', port: sock.address().port });
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    const c = JSON.parse(line) as { cmd: string; server?: string; to?: string; data?: string };
    if (c.cmd === 'stun' && c.server) stun(c.server);
    else if (c.cmd === 'send' && c.to) {
      const [host, port] = split(c.to);
      sock.send(Buffer.from(c.data ?? ''), port, host);
    }
  });
  rl.on('close', () => process.exit(0));
});
