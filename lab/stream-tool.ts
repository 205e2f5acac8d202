// TCP ends for stream tests and benchmarks, run inside a lab namespace (the test process is
// outside it). One JSON line on stdout per result; "listening" once a server is bound.
//
//   node stream-tool.js http PORT TEXT              HTTP server on 127.0.0.1:PORT answering TEXT
//   node stream-tool.js echo PORT [ADDR]            echo server
//   node stream-tool.js serve-file PORT FILE [B/s]  sends FILE to each connection (rate-capped), then FIN
//   node stream-tool.js serve-bytes PORT N [ADDR]   sends N bytes (1 MiB random block repeated), then FIN
//   node stream-tool.js sink-hash PORT [ADDR]       per connection: {bytes, sha256} at its end, then FIN
//   node stream-tool.js fetch HOST PORT             reads to the end: {bytes, sha256, ms, how}
//   node stream-tool.js send-file HOST PORT FILE [B/s]  sends FILE, half-closes, waits for the close
//   node stream-tool.js roundtrip HOST PORT TEXT N  sends TEXT N times to an echo server, half-closes, checks the echo
//   node stream-tool.js hold HOST PORT              connects, one echo round trip ("open"), waits for the close: {how}
//   node stream-tool.js pingpong HOST PORT N        N one-byte round trips on an echo server: {rtts}
//   node stream-tool.js hold-many HOST PORT N       N connections, each one echo round trip, then holds them
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import type { Readable } from 'node:stream';

const [cmd, ...args] = process.argv.slice(2);
const out = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
const listening = (): void => void process.stdout.write('listening\n');

/** Writes a readable to a socket at no more than `rate` bytes/s (0: no cap). */
function pace(src: Readable, sock: Socket, rate: number): void {
  if (rate <= 0) {
    src.pipe(sock);
    return;
  }
  const started = performance.now();
  let sent = 0;
  src.on('data', (d: Buffer) => {
    sent += d.length;
    const ahead = (sent / rate) * 1000 - (performance.now() - started);
    const full = !sock.write(d);
    if (ahead > 0 || full) {
      src.pause();
      let waits = (ahead > 0 ? 1 : 0) + (full ? 1 : 0);
      const go = (): void => {
        if (--waits === 0) src.resume();
      };
      if (ahead > 0) setTimeout(go, ahead);
      if (full) sock.once('drain', go);
    }
  });
  src.on('end', () => sock.end());
}

function server(port: number, addr: string, onConn: (s: Socket) => void): void {
  const srv = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => undefined);
    onConn(s);
  });
  srv.listen(port, addr, listening);
}

function client(host: string, port: number): Socket {
  const s = connect({ host, port, allowHalfOpen: true });
  s.setNoDelay(true);
  return s;
}

const port = Number(args[1] ?? 0);
switch (cmd) {
  case 'http': {
    const text = args[1] ?? 'hello';
    createHttpServer((_req, res) => res.end(text)).listen(Number(args[0]), '127.0.0.1', listening);
    break;
  }
  case 'echo':
    server(Number(args[0]), args[1] ?? '127.0.0.1', (s) => s.pipe(s));
    break;
  case 'serve-file':
    server(Number(args[0]), '127.0.0.1', (s) => pace(createReadStream(args[1]!, { highWaterMark: 64 << 10 }), s, Number(args[2] ?? 0)));
    break;
  case 'serve-bytes': {
    const block = randomBytes(1 << 20);
    const total = Number(args[1]);
    server(Number(args[0]), args[2] ?? '127.0.0.1', (s) => {
      s.resume();
      let left = total;
      const pump = (): void => {
        while (left > 0) {
          const n = Math.min(left, block.length);
          left -= n;
          if (!s.write(n === block.length ? block : block.subarray(0, n))) return void s.once('drain', pump);
        }
        s.end();
      };
      pump();
    });
    break;
  }
  case 'sink-hash':
    server(Number(args[0]), args[1] ?? '127.0.0.1', (s) => {
      const h = createHash('sha256');
      let bytes = 0;
      s.on('data', (d: Buffer) => {
        bytes += d.length;
        h.update(d);
      });
      s.on('end', () => {
        out({ bytes, sha256: h.digest('hex') });
        s.end();
      });
    });
    break;
  case 'fetch': {
    const s = client(args[0]!, port);
    const h = createHash('sha256');
    let bytes = 0;
    let t0 = 0;
    s.on('connect', () => (t0 = performance.now()));
    s.on('data', (d: Buffer) => {
      bytes += d.length;
      h.update(d);
    });
    s.on('end', () => s.end());
    s.on('error', (e: NodeJS.ErrnoException) => out({ bytes, how: `error ${e.code ?? e.message}` }));
    s.on('close', (hadError) => {
      if (!hadError) out({ bytes, sha256: h.digest('hex'), ms: performance.now() - t0, how: 'end' });
    });
    break;
  }
  case 'send-file': {
    const s = client(args[0]!, port);
    s.on('connect', () => pace(createReadStream(args[2]!, { highWaterMark: 64 << 10 }), s, Number(args[3] ?? 0)));
    s.resume();
    s.on('error', (e: NodeJS.ErrnoException) => out({ how: `error ${e.code ?? e.message}` }));
    s.on('close', (hadError) => {
      if (!hadError) out({ how: 'end' });
    });
    break;
  }
  case 'roundtrip': {
    const payload = Buffer.from(args[2]!.repeat(Number(args[3])));
    const s = client(args[0]!, port);
    const got: Buffer[] = [];
    s.on('connect', () => s.end(payload));
    s.on('data', (d: Buffer) => got.push(d));
    s.on('error', (e: NodeJS.ErrnoException) => out({ how: `error ${e.code ?? e.message}` }));
    s.on('close', (hadError) => {
      const back = Buffer.concat(got);
      if (!hadError) out({ sent: payload.length, received: back.length, ok: back.equals(payload), how: 'end' });
    });
    break;
  }
  case 'hold': {
    const s = client(args[0]!, port);
    s.on('connect', () => s.write('x'));
    s.once('data', () => process.stdout.write('open\n'));
    s.on('end', () => s.end());
    s.on('error', (e: NodeJS.ErrnoException) => out({ how: `error ${e.code ?? e.message}` }));
    s.on('close', (hadError) => {
      if (!hadError) out({ how: 'end' });
    });
    break;
  }
  case 'pingpong': {
    const n = Number(args[2]);
    const s = client(args[0]!, port);
    const rtts: number[] = [];
    let t = 0;
    const one = Buffer.from('p');
    s.on('connect', () => {
      t = performance.now();
      s.write(one);
    });
    s.on('data', (d: Buffer) => {
      for (let i = 0; i < d.length; i++) {
        const now = performance.now();
        rtts.push(now - t);
        if (rtts.length === n) {
          out({ rtts });
          s.destroy();
          return;
        }
        t = now;
        s.write(one);
      }
    });
    s.on('error', (e: NodeJS.ErrnoException) => out({ how: `error ${e.code ?? e.message}` }));
    break;
  }
  case 'hold-many': {
    const n = Number(args[2]);
    let open = 0;
    const socks: Socket[] = [];
    const next = (): void => {
      if (socks.length === n) return;
      const s = client(args[0]!, port);
      socks.push(s);
      s.on('error', (e: NodeJS.ErrnoException) => out({ how: `error ${e.code ?? e.message}` }));
      s.on('connect', () => s.write('x'));
      s.once('data', () => {
        if (++open === n) process.stdout.write('open\n');
        next();
      });
    };
    // A few at a time, so the agent is not asked for 100 target connections in one instant.
    for (let i = 0; i < 8; i++) next();
    break;
  }
  default:
    process.stderr.write(`unknown command ${cmd}\n`);
    process.exit(2);
}
