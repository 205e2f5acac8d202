import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StunStreamDecoder } from '../../src/stun/framing.js';
import { StunDecodeError } from '../../src/stun/errors.js';
import { SAMPLE_IPV4_RESPONSE, SAMPLE_REQUEST } from './vectors.js';

test('messages back to back, and one split across chunks, come out whole and in order', () => {
  const d = new StunStreamDecoder();
  const stream = Buffer.concat([SAMPLE_REQUEST, SAMPLE_IPV4_RESPONSE]);
  assert.deepEqual(d.push(stream), [SAMPLE_REQUEST, SAMPLE_IPV4_RESPONSE]);
  const out: Buffer[] = [];
  for (let i = 0; i < stream.length; i += 7) out.push(...d.push(stream.subarray(i, i + 7)));
  assert.deepEqual(out, [SAMPLE_REQUEST, SAMPLE_IPV4_RESPONSE]);
  assert.equal(d.pendingBytes, 0);
});

test('a stream that is not STUN, or announces an oversized message, is refused before buffering it', () => {
  assert.throws(() => new StunStreamDecoder().push(Buffer.from('GET / HTTP/1.1\r\n')), StunDecodeError);
  const huge = Buffer.from('0001fff02112a442', 'hex');
  assert.throws(() => new StunStreamDecoder(2048).push(huge), /larger than the 2048-byte limit/);
});
