import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatLogLine, logFormat } from '../../src/log/logger.js';

test('a JSON log line becomes one readable line: time, level, name, message, then the fields', () => {
  const line = JSON.stringify({ level: 30, time: Date.UTC(2026, 11, 3, 14, 41, 0, 123), pid: 1, name: 'agent', msg: 'path changed', peer: '3f9a0c1e', path: { kind: 'direct' } });
  assert.equal(formatLogLine(line), '14:41:00.123 INFO  agent: path changed peer=3f9a0c1e path={"kind":"direct"}\n');
  assert.equal(formatLogLine('not json'), 'not json');
});

test('the format: TRAVERSE_LOG_FORMAT wins; else pretty only on a terminal', () => {
  assert.equal(logFormat({ TRAVERSE_LOG_FORMAT: 'json' }), 'json');
  assert.equal(logFormat({ TRAVERSE_LOG_FORMAT: 'pretty' }), 'pretty');
  assert.equal(logFormat({}), process.stderr.isTTY ? 'pretty' : 'json');
});
