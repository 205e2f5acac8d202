// The public surface of the entry point: which values it exports (nothing internal), and, at
// compile time, that its types are exact: no `any` in what an app receives, options that cannot
// be mixed are refused, events are checked by name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import * as traverse from '../../src/index.js';
import type { Agent, Connection, Path, Pong, ServeOptions, StreamRequest, TraverseErrorCode } from '../../src/index.js';

/** True only for `any`: compile-time checks below fail if a public type degrades to it. */
type IsAny<T> = 0 extends 1 & T ? true : false;
type Assert<T extends false> = T;

export type NoAny = [
  Assert<IsAny<Awaited<ReturnType<Connection['openStream']>>>>,
  Assert<IsAny<Awaited<ReturnType<Connection['ping']>>>>,
  Assert<IsAny<Connection['path']>>,
  Assert<IsAny<Agent['allowTargets']>>,
  Assert<IsAny<StreamRequest['from']>>,
  Assert<IsAny<Awaited<ReturnType<typeof traverse.connect>>>>,
  Assert<IsAny<Awaited<ReturnType<typeof traverse.serve>>>>,
  Assert<IsAny<traverse.TraverseError['code']>>,
  Assert<IsAny<Parameters<typeof traverse.connect>[1]>>,
  Assert<IsAny<ServeOptions>>,
];

test('the entry point exports connect, serve and TraverseError, and no other value', () => {
  assert.deepEqual(Object.keys(traverse).sort(), ['TraverseError', 'connect', 'serve']);
  const err = new traverse.TraverseError('STREAM_REFUSED', 'no');
  assert.ok(err instanceof Error);
  assert.equal(err.name, 'TraverseError');
  const code: TraverseErrorCode = err.code;
  assert.equal(code, 'STREAM_REFUSED');
});

test('types: wrong options and events do not compile', () => {
  const base = { server: 'http://127.0.0.1:1', token: 't' };
  const handler = (_r: StreamRequest, s: Duplex): void => void s.end();
  // Both shapes of ServeOptions are fine on their own...
  const targets: ServeOptions = { ...base, allowTargets: ['127.0.0.1:*'] };
  const app: ServeOptions = { ...base, onStream: handler, accept: (r) => r.target === 'echo' || 'no' };
  // ...but serving targets and handing streams to the app do not mix.
  // @ts-expect-error allowTargets with onStream
  const mixed: ServeOptions = { ...base, onStream: handler, allowTargets: ['127.0.0.1:*'] };
  // @ts-expect-error accept without onStream
  const acceptOnly: ServeOptions = { ...base, accept: () => true };
  const onPath = (conn: Connection): void => {
    conn.on('path', (p: Path) => void (p.kind === 'direct' ? p.endpoint : null));
    // @ts-expect-error not an event of a connection
    conn.on('stream', () => undefined);
  };
  const pong = (p: Pong | null): number => p?.latencyMs ?? -1;
  assert.ok([targets, app, mixed, acceptOnly, onPath, pong].length === 6);
});
