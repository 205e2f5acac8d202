import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseForwardSpec } from '../../src/cli/forward.js';
import { UsageError } from '../../src/cli/errors.js';

test('forward specs: LOCAL:HOST:PORT, IPv6 in brackets, and the short LOCAL form', () => {
  assert.deepEqual(parseForwardSpec('8080:localhost:80'), { localPort: 8080, target: 'localhost:80', text: '8080:localhost:80' });
  assert.deepEqual(parseForwardSpec('2222:[::1]:22'), { localPort: 2222, target: '[::1]:22', text: '2222:[::1]:22' });
  assert.deepEqual(parseForwardSpec('5432'), { localPort: 5432, target: 'localhost:5432', text: '5432' });
  for (const bad of ['', 'x:localhost:80', '8080:localhost', '70000:localhost:80', '8080:localhost:0', '8080:localhost:99999']) {
    assert.throws(() => parseForwardSpec(bad), UsageError, bad);
  }
});
