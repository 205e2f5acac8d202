// Just enough of a TLS ClientHello (RFC 8446 4.1.2) to route a connection before the handshake:
// the server name (SNI, RFC 6066 3) and the ALPN protocols offered (RFC 7301 3.1). The server
// needs it for ACME TLS-ALPN-01 (RFC 8737): a validation connection offers only "acme-tls/1" and
// must be answered with the challenge certificate, which Node cannot pick inside a handshake.
//
// Layout, after the 5-byte record header (type 22, version, length) and the 4-byte handshake
// header (type 1, 24-bit length):
//   version(2) random(32) session_id<1> cipher_suites<2> compression<1> extensions<2>
//   extension: type(2) data<2>;  server_name(0): list<2> { type(1)=0 name<2> };
//   alpn(16): list<2> { protocol<1> }
// A hello in several records (a 16 KB one) is not parsed: it is then an ordinary connection.

export type HelloPeek =
  /** Not enough bytes yet. */
  | { readonly kind: 'more' }
  /** Not a ClientHello in one record: hand the bytes on untouched. */
  | { readonly kind: 'other' }
  | { readonly kind: 'hello'; readonly serverName: string | null; readonly alpn: readonly string[] };

const RECORD_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
/** The largest TLS record plus its header: beyond it a peek stops waiting. */
export const MAX_HELLO_BYTES = 5 + 16_384;

export function peekClientHello(buf: Buffer): HelloPeek {
  if (buf.length < 1) return { kind: 'more' };
  if (buf[0] !== RECORD_HANDSHAKE) return { kind: 'other' };
  if (buf.length < 5) return { kind: 'more' };
  const recordLength = buf.readUInt16BE(3);
  if (buf.length < 5 + recordLength) return { kind: 'more' };
  const rec = buf.subarray(5, 5 + recordLength);
  if (rec.length < 4 || rec[0] !== HANDSHAKE_CLIENT_HELLO) return { kind: 'other' };
  const helloLength = (rec[1]! << 16) | (rec[2]! << 8) | rec[3]!;
  if (4 + helloLength > rec.length) return { kind: 'other' };
  const r = new Reader(rec.subarray(4, 4 + helloLength));
  try {
    r.skip(2 + 32);
    r.skip(r.u8()); // session id
    r.skip(r.u16()); // cipher suites
    r.skip(r.u8()); // compression methods
    if (r.left === 0) return { kind: 'hello', serverName: null, alpn: [] };
    const ext = new Reader(r.take(r.u16()));
    let serverName: string | null = null;
    const alpn: string[] = [];
    while (ext.left > 0) {
      const type = ext.u16();
      const data = new Reader(ext.take(ext.u16()));
      if (type === EXT_SERVER_NAME) {
        const list = new Reader(data.take(data.u16()));
        while (list.left > 0) {
          const nameType = list.u8();
          const name = list.take(list.u16());
          if (nameType === 0 && serverName === null) serverName = name.toString('ascii');
        }
      } else if (type === EXT_ALPN) {
        const list = new Reader(data.take(data.u16()));
        while (list.left > 0) alpn.push(list.take(list.u8()).toString('ascii'));
      }
    }
    return { kind: 'hello', serverName, alpn };
  } catch {
    return { kind: 'other' }; // a length that runs past its container
  }
}

class Reader {
  private at = 0;
  constructor(private readonly buf: Buffer) {}
  get left(): number {
    return this.buf.length - this.at;
  }
  u8(): number {
    return this.take(1)[0]!;
  }
  u16(): number {
    return this.take(2).readUInt16BE(0);
  }
  skip(n: number): void {
    this.take(n);
  }
  take(n: number): Buffer {
    if (n > this.left) throw new RangeError('truncated');
    const out = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
}
