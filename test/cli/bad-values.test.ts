// Every command with bad values, as a newcomer types them: exit 2, one line on stderr that
// starts with "traverse: " and names what is wrong, and never a stack trace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../helpers/cli.js';

const TOKEN = 'trv1_' + 'A'.repeat(43);
// No peer command below gets as far as connecting: each is refused while its arguments are read.
const CASES: readonly { args: string[]; env?: NodeJS.ProcessEnv; says: RegExp }[] = [
  { args: ['bogus'], says: /unknown command 'bogus'/ },
  { args: ['ping'], says: /missing required argument 'agent'/ },
  { args: ['ping', 'dev-box', '--count', '0', '--server', 'http://127.0.0.1:9', '--token', TOKEN], says: /--count must be from 1/ },
  { args: ['ping', 'dev-box', '--server', 'ftp://x:1', '--token', TOKEN], says: /--server "ftp:\/\/x:1" has the scheme ftp/ },
  { args: ['ping', 'dev-box', '--server', 'http://127.0.0.1:9'], env: { TRAVERSE_TOKEN: '' }, says: /no token/ },
  { args: ['agent'], env: { TRAVERSE_TOKEN: TOKEN, TRAVERSE_SERVER: 'http://127.0.0.1:9,,http://127.0.0.1:10' }, says: /--server ".*" has an empty entry/ },
  { args: ['agent', '--server', 'http://127.0.0.1:9,ftp://x:1'], env: { TRAVERSE_TOKEN: TOKEN }, says: /--server "ftp:\/\/x:1" has the scheme ftp/ },
  { args: ['ping', 'dev-box', '--token', TOKEN], env: { TRAVERSE_SERVER: '' }, says: /no server/ },
  { args: ['ping', 'dev-box', '--server', 'http://127.0.0.1:9', '--log-level', 'loud'], env: { TRAVERSE_TOKEN: TOKEN }, says: /--log-level "loud" is not a level/ },
  { args: ['agent', '--server', 'http://127.0.0.1:9'], env: { TRAVERSE_TOKEN: TOKEN, TRAVERSE_LOG_LEVEL: 'loud' }, says: /--log-level "loud"/ },
  { args: ['agent', '--max-streams', '0'], says: /--max-streams must be from 1 to 65536/ },
  { args: ['agent', '--server', 'http://127.0.0.1:9'], env: { TRAVERSE_TOKEN: TOKEN, TRAVERSE_TCP_LANE: 'maybe' }, says: /TRAVERSE_TCP_LANE="maybe": use 0/ },
  { args: ['agent', '--allow-target', 'nonsense'], env: { TRAVERSE_TOKEN: TOKEN, TRAVERSE_SERVER: 'http://127.0.0.1:9' }, says: /--allow-target/ },
  { args: ['forward', 'dev-box', '99999', '--server', 'http://127.0.0.1:9', '--token', TOKEN], says: /99999/ },
  { args: ['proxy', 'dev-box', 'no-port', '--server', 'http://127.0.0.1:9'], env: { TRAVERSE_TOKEN: TOKEN }, says: /HOST:PORT/ },
  { args: ['speedtest', 'dev-box', '--direction', 'sideways'], says: /--direction must be download, upload or both/ },
  { args: ['stun'], says: /missing required argument 'server'/ },
  { args: ['stun', '127.0.0.1', '--timeout', 'soon'], says: /--timeout must be a whole number/ },
  { args: ['netcheck', '--timeout', 'abc'], says: /--timeout must be a whole number/ },
  { args: ['netcheck'], env: { TRAVERSE_STUN: '', TRAVERSE_SERVER: '' }, says: /no STUN servers/ },
  { args: ['server', '--listen', 'nope:xx'], says: /--listen port "xx"/ },
  { args: ['server', '--ping-interval', 'often'], says: /--ping-interval "often"/ },
  { args: ['server', '--log-format', 'xml'], says: /--log-format "xml" is not a format/ },
  { args: ['stun-server', '--rate-limit', '-1'], says: /--rate-limit/ },
  { args: ['stun-server', '--metrics', '1.2.3.4:99999'], says: /--metrics port 99999/ },
  { args: ['token', 'create'], says: /name exactly one identity/ },
  { args: ['token', 'create', '--bogus'], says: /unknown option '--bogus'/ },
  { args: ['token', 'list', '--database', 'postgres://u@h/db', '--data', 'x'], says: /either --database URL \(PostgreSQL\) or --data DIR/ },
  { args: ['allow', 'list'], env: { TRAVERSE_DATABASE_URL: 'sqlite:///x.db' }, says: /TRAVERSE_DATABASE_URL "sqlite:\/\/\/x\.db": use a postgres:\/\// },
  { args: ['status', '--json', '--bogus'], says: /unknown option '--bogus'/ },
];

for (const c of CASES) {
  test(`traverse ${c.args.join(' ')}: exit 2, one line`, async () => {
    const r = await runCli(c.args, { env: { TRAVERSE_TOKEN: '', TRAVERSE_SERVER: '', ...c.env }, timeoutMs: 10_000 });
    assert.equal(r.code, 2, `exit ${r.code}\n${r.stderr}`);
    const lines = r.stderr.trimEnd().split('\n').filter((l) => !/warning: --token on the command line/.test(l));
    assert.equal(lines.length, 1, `one line on stderr:\n${r.stderr}`);
    assert.match(lines[0]!, /^traverse: /);
    assert.match(lines[0]!, c.says);
    assert.doesNotMatch(r.stderr, /\n\s+at |Error:/, 'no stack trace');
  });
}
