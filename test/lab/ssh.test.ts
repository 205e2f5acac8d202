// Real OpenSSH through real NATs (easy/easy): `traverse ssh dev-box -- COMMAND`, and plain
// `ssh`/`scp` with the config `traverse config-ssh` wrote, each run a command on the agent (or
// copy a file) and hand back its output and exit status. The lab's namespaces share one file
// system, so what scp wrote "on the agent" is read back here.
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { labSkip } from '../../lab/availability.js';
import { createLab } from '../../lab/topology.js';
import { pairOfNats } from '../../lab/topologies.js';
import { peerEnv } from '../../lab/peers.js';
import { sshFixture, startSshd, streamPair } from '../../lab/streams-lab.js';
import { run } from '../../lab/exec.js';
import { BIN, runCli } from '../helpers/cli.js';

const skip = await labSkip();
const SSH_PORT = 2222;
const TARGET = `127.0.0.1:${SSH_PORT}`;

describe('ssh in the lab', { skip }, () => {
  test('traverse ssh, and ssh/scp with the config from traverse config-ssh, easy/easy', async (t) => {
    const lab = await createLab(pairOfNats('easy', 'easy'));
    const dir = mkdtempSync(join(tmpdir(), 'traverse-lab-ssh-'));
    try {
      const pair = await streamPair(lab);
      const ssh = await sshFixture(SSH_PORT);
      // scp speaks SFTP by default since OpenSSH 9.0: give this sshd its built-in SFTP server.
      appendFileSync(ssh.config, 'Subsystem sftp internal-sftp\n');
      await startSshd(lab, 'agent', ssh.config, SSH_PORT);
      // The client's environment carries the server and token; nothing else names them.
      const env = { ...peerEnv(dir), TRAVERSE_SERVER: pair.coord.url, TRAVERSE_TOKEN: pair.clientToken, TRAVERSE_TOKEN_FILE: undefined };
      const knownHosts = join(dir, 'known_hosts');
      const sshOpts = ['-i', ssh.key, '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=accept-new', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR'];

      // 1. traverse ssh: output and exit status of the remote command.
      const viaCommand = await lab.exec('client', process.execPath, [BIN, 'ssh', 'root@dev-box', '--target', TARGET, ...sshOpts, '--', 'echo hello from $(uname -n); exit 7'], {
        timeoutMs: 40_000,
        env,
      });
      assert.equal(viaCommand.code, 7, `traverse ssh: ${viaCommand.stdout}\n${viaCommand.stderr}`);
      assert.equal(viaCommand.stdout, `hello from ${hostname()}\n`);
      // HostKeyAlias: the host key is filed under traverse.dev-box (hashed or not, ssh-keygen -F finds it).
      const filed = await run('ssh-keygen', ['-F', 'traverse.dev-box', '-f', knownHosts]);
      assert.equal(filed.code, 0, `no known_hosts entry for traverse.dev-box:\n${readFileSync(knownHosts, 'utf8')}`);
      t.diagnostic(`traverse ssh: exit ${viaCommand.code}, stdout ${JSON.stringify(viaCommand.stdout)}`);

      // 2. traverse config-ssh into a config that already has the user's own settings.
      const config = join(dir, 'ssh_config');
      const own = `# my settings\nHost *\n  User root\n  IdentityFile ${ssh.key}\n  UserKnownHostsFile ${knownHosts}\n  StrictHostKeyChecking yes\n  BatchMode yes\n  LogLevel ERROR\n`;
      writeFileSync(config, own, { mode: 0o600 });
      const wrote = await runCli(['config-ssh', '--ssh-config', config, '--agent', 'dev-box', '--target', TARGET, '--yes'], { env: { TRAVERSE_SERVER: undefined, TRAVERSE_TOKEN: undefined } });
      assert.equal(wrote.code, 0, wrote.stderr);
      const text = readFileSync(config, 'utf8');
      assert.ok(text.startsWith(own), 'the user\'s settings are kept');
      assert.ok(!text.includes(pair.clientToken) && !text.includes(pair.coord.url), 'neither token nor server in the file');
      t.diagnostic(`config-ssh wrote: ${text.split('\n').find((l) => l.startsWith('  ProxyCommand'))?.trim()}`);
      const again = await runCli(['config-ssh', '--ssh-config', config, '--agent', 'dev-box', '--target', TARGET, '--yes']);
      assert.match(again.stdout, /is up to date/);
      assert.equal(readFileSync(config, 'utf8'), text);

      // 3. Plain ssh with that config (the host key from step 1 must match: StrictHostKeyChecking yes).
      const plain = await lab.exec('client', 'ssh', ['-F', config, 'traverse.dev-box', 'echo plain $(id -un); exit 3'], { timeoutMs: 40_000, env });
      assert.equal(plain.code, 3, `ssh -F: ${plain.stdout}\n${plain.stderr}`);
      assert.equal(plain.stdout, 'plain root\n');

      // 4. scp up and back down through the same config, over SFTP (the default) and the old SCP protocol (-O).
      const payload = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251));
      const local = join(dir, 'payload.bin');
      writeFileSync(local, payload);
      for (const [name, flags] of [['sftp', []], ['scp -O', ['-O']]] as const) {
        const remote = join(dir, `on-the-agent-${flags.length}.bin`);
        const up = await lab.exec('client', 'scp', ['-F', config, '-q', ...flags, local, `traverse.dev-box:${remote}`], { timeoutMs: 40_000, env });
        assert.equal(up.code, 0, `scp up (${name}): ${up.stderr}`);
        assert.ok(readFileSync(remote).equals(payload), `the agent got the file intact (${name})`);
        const back = join(dir, `back-${flags.length}.bin`);
        const down = await lab.exec('client', 'scp', ['-F', config, '-q', ...flags, `traverse.dev-box:${remote}`, back], { timeoutMs: 40_000, env });
        assert.equal(down.code, 0, `scp down (${name}): ${down.stderr}`);
        assert.ok(readFileSync(back).equals(payload), `and it came back intact (${name})`);
      }

      // 5. Without the environment the ProxyCommand says what is missing, and ssh fails (255).
      const bare = await lab.exec('client', 'ssh', ['-F', config, 'traverse.dev-box', 'true'], {
        timeoutMs: 20_000,
        env: { ...env, TRAVERSE_SERVER: undefined, TRAVERSE_TOKEN: undefined },
      });
      assert.equal(bare.code, 255);
      assert.match(bare.stderr, /traverse: no server: pass --server URL or set TRAVERSE_SERVER/);
    } finally {
      await lab.teardown();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
