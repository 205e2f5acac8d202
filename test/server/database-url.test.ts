// PostgreSQL URLs: which are accepted, and that a password never reaches what is shown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { databaseUrlProblem, isDatabaseUrl, redactDatabaseUrl, redactedUrl } from '../../src/server/store/database-url.js';

test('database URLs: postgres:// or postgresql:// naming a database', () => {
  assert.equal(isDatabaseUrl('postgres://u@h/db'), true);
  assert.equal(isDatabaseUrl('PostgreSQL://u@h/db'), true);
  assert.equal(isDatabaseUrl('/var/lib/traverse'), false);
  assert.equal(databaseUrlProblem('postgres://u:p@h:5432/db?sslmode=require'), undefined);
  assert.match(databaseUrlProblem('mysql://u@h/db')!, /postgres:\/\//);
  assert.match(databaseUrlProblem('postgres://u@h')!, /name the database/);
  assert.match(databaseUrlProblem('postgres://u@h/')!, /name the database/);
  assert.match(databaseUrlProblem('postgres://u:p@[bad/db')!, /percent-encoded/);
});

test('a password is never shown: in the URL, in its query, percent-encoded or not, in any message', () => {
  assert.equal(redactedUrl('postgres://traverse:hunter2@db.example:5432/traverse'), 'postgres://traverse:***@db.example:5432/traverse');
  assert.equal(redactedUrl('postgres://traverse@db.example/traverse'), 'postgres://traverse@db.example/traverse');
  assert.equal(redactedUrl('postgres://db.example/t?user=x&password=hunter2'), 'postgres://db.example/t?user=x&password=***');
  assert.equal(redactedUrl('postgres://u:p@[bad/db'), 'postgres://***');
  const url = 'postgres://traverse:s%40cret%2Fpw@db.example/traverse';
  const message = `could not connect to ${url}: password "s@cret/pw" rejected (s%40cret%2Fpw)`;
  const clean = redactDatabaseUrl(message, url);
  assert.ok(!clean.includes('s@cret/pw') && !clean.includes('s%40cret%2Fpw'), clean);
  assert.match(clean, /postgres:\/\/traverse:\*\*\*@db\.example\/traverse/);
});
