// The lab's own guarantees: teardown is complete and idempotent, processes die with the lab,
// conntrack can be read and flushed, interrupted runs clean up after themselves, and the sweep
// removes dead runs' namespaces without touching live ones.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { labSkip } from '../../lab/availability.js';
import { namespacesWithPrefix, pidAlive, sweepStale } from '../../lab/cleanup.js';
import { startCoturn, STUN_PORT } from '../../lab/coturn.js';
import { newPrefix } from '../../lab/names.js';
import { addNamespace, deleteNamespace, listNamespaces } from '../../lab/netns.js';
import { createLab } from '../../lab/topology.js';
import { behindNat, STUN_ADDRESSES, STUN_HOST } from '../../lab/topologies.js';
import { UdpPeer } from '../../lab/udp-peer-control.js';

const skip = await labSkip();
const TOPOLOGY_JS = fileURLToPath(new URL('../../lab/topology.js', import.meta.url));
const TOPOLOGIES_JS = fileURLToPath(new URL('../../lab/topologies.js', import.meta.url));

/** A child Node process that builds a lab, prints its prefix, then waits to be killed. */
async function childLab(): Promise<{ child: ReturnType<typeof spawn>; prefix: string }> {
  const code = [
    `import { createLab } from ${JSON.stringify(TOPOLOGY_JS)};`,
    `import { behindNat } from ${JSON.stringify(TOPOLOGIES_JS)};`,
    `const lab = await createLab(behindNat('easy'));`,
    `lab.spawn('client', 'sleep', ['600']);`,
    'console.log(lab.prefix);',
    'setInterval(() => {}, 1000);',
  ].join('\n');
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [data] = (await once(child.stdout, 'data')) as [Buffer];
  return { child, prefix: data.toString().trim() };
}

describe('lab lifecycle', { skip, concurrency: true }, () => {
  test('teardown kills processes, deletes every namespace, and is idempotent', async () => {
    const lab = await createLab(behindNat('easy'));
    const names = lab.namespaces;
    assert.deepEqual((await namespacesWithPrefix(lab.prefix)).sort(), [...names].sort());
    const sleeper = lab.spawn('client', 'sleep', ['600']);
    const r = await lab.exec('client', 'ip', ['-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /192\.168\.1\.2\/24/);
    await Promise.all([lab.teardown(), lab.teardown()]);
    await lab.teardown();
    assert.deepEqual(await namespacesWithPrefix(lab.prefix), []);
    assert.ok(sleeper.pid !== undefined && !pidAlive(sleeper.pid));
    await assert.rejects(async () => lab.exec('client', 'true'), /torn down/);
  });

  test('conntrack on a router can be listed and flushed', async () => {
    const lab = await createLab(behindNat('easy'));
    try {
      await startCoturn(lab, STUN_HOST);
      const peer = await UdpPeer.start(lab, 'client');
      assert.ok(await peer.mappedVia(`${STUN_ADDRESSES[0]}:${STUN_PORT}`));
      const entries = await lab.conntrackList('nat', 'udp');
      assert.ok(entries.some((l) => l.includes(`src=${lab.node('client').address}`) && l.includes(`dport=${STUN_PORT}`)), entries.join('\n'));
      await lab.conntrackFlush('nat');
      assert.deepEqual(await lab.conntrackList('nat', 'udp'), []);
    } finally {
      await lab.teardown();
    }
  });

  test('an unsolicited early probe is dropped and does not move the later mapping', async () => {
    const lab = await createLab(behindNat('easy'));
    try {
      await startCoturn(lab, STUN_HOST);
      const wan = lab.router('nat').router.wanAddress;
      const [client, outside] = await Promise.all([UdpPeer.start(lab, 'client', 40000), UdpPeer.start(lab, 'coord', 40001)]);
      outside.send(`${wan}:40000`, 'early');
      assert.equal(await client.received('early', 300), undefined);
      assert.equal(await client.mappedVia(`${STUN_ADDRESSES[0]}:${STUN_PORT}`), `${wan}:40000`);
      // Once the client has sent to it, the outside peer gets through.
      client.send(`${lab.node('coord').address}:40001`, 'open');
      assert.ok(await outside.received('open', 2000));
      outside.send(`${wan}:40000`, 'late');
      assert.ok(await client.received('late', 2000));
    } finally {
      await lab.teardown();
    }
  });

  test('SIGTERM to a process holding a lab tears the lab down', async () => {
    const { child, prefix } = await childLab();
    assert.ok((await namespacesWithPrefix(prefix)).length > 0);
    child.kill('SIGTERM');
    const [, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    assert.equal(signal, 'SIGTERM', 'the signal is re-raised after teardown');
    assert.deepEqual(await namespacesWithPrefix(prefix), []);
  });

  test('the sweep removes a SIGKILLed run and leaves live runs alone', async () => {
    const { child, prefix } = await childLab();
    child.kill('SIGKILL');
    await once(child, 'exit');
    assert.ok((await namespacesWithPrefix(prefix)).length > 0, 'SIGKILL leaves namespaces behind');
    const mine = `${newPrefix()}live`;
    await addNamespace(mine);
    try {
      const removed = await sweepStale();
      assert.ok(removed.every((ns) => !ns.startsWith(`trv-${process.pid}-`)));
      assert.deepEqual(await namespacesWithPrefix(prefix), []);
      assert.ok((await listNamespaces()).includes(mine));
    } finally {
      await deleteNamespace(mine);
    }
  });
});
