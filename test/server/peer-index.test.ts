// The index behind the hub's identities and tunnels: a lone peer under a name without a Set,
// several in insertion order, and back to a lone one; a property test against a Map of Sets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DEFAULT_LIMITS, Peer, type PeerLink } from '../../src/server/hub.js';
import { PeerIndex } from '../../src/server/peer-index.js';

const link: PeerLink = { sendText() {}, sendBinary() {}, bufferedAmount: () => 0, close() {} };
const peers = Array.from({ length: 6 }, (_, i) => new Peer(i + 1, 'client', `c${i}`, link, new Set(), 0, null, DEFAULT_LIMITS));

test('one peer, several, one again: first is the oldest, counts and iteration follow', () => {
  const ix = new PeerIndex();
  const [a, b, c] = peers as [Peer, Peer, Peer];
  assert.deepEqual([ix.count('x'), ix.first('x'), [...ix.get('x')]], [0, undefined, []]);
  ix.add('x', a);
  ix.add('x', a); // twice is once
  assert.deepEqual([ix.count('x'), ix.first('x'), [...ix.get('x')]], [1, a, [a]]);
  ix.add('x', b);
  ix.add('x', c);
  ix.add('y', c);
  assert.deepEqual([ix.count('x'), ix.first('x'), [...ix.get('x')]], [3, a, [a, b, c]]);
  assert.equal(ix.size, 4);
  assert.equal(ix.delete('x', a), true);
  assert.equal(ix.delete('x', a), false);
  assert.equal(ix.delete('y', b), false);
  assert.deepEqual([ix.first('x'), [...ix.all()]], [b, [b, c, c]]);
  assert.equal(ix.delete('x', b), true);
  assert.deepEqual([ix.count('x'), ix.first('x')], [1, c]);
  assert.equal(ix.delete('x', c), true);
  assert.deepEqual([ix.count('x'), ix.size], [0, 1]);
});

test('any sequence of adds and deletes answers as a Map of Sets would', () => {
  const op = fc.record({ add: fc.boolean(), name: fc.constantFrom('p', 'q', 'r'), peer: fc.integer({ min: 0, max: peers.length - 1 }) });
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const ix = new PeerIndex();
      const model = new Map<string, Set<Peer>>();
      for (const o of ops) {
        const p = peers[o.peer]!;
        let set = model.get(o.name);
        if (o.add) {
          if (!set) model.set(o.name, (set = new Set()));
          set.add(p);
          ix.add(o.name, p);
        } else {
          const had = set?.delete(p) ?? false;
          if (set?.size === 0) model.delete(o.name);
          assert.equal(ix.delete(o.name, p), had);
        }
        for (const name of ['p', 'q', 'r']) {
          const want = [...(model.get(name) ?? [])];
          assert.deepEqual([...ix.get(name)], want);
          assert.equal(ix.count(name), want.length);
          assert.equal(ix.first(name), want[0]);
        }
        assert.equal(ix.size, [...model.values()].reduce((n, set) => n + set.size, 0), 'size counts every peer once');
      }
    }),
  );
});
