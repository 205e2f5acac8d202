// Waiting for a server in a lab host to have bound its UDP sockets: STUN servers log nothing
// useful when their listeners open, so the sockets themselves are polled with `ss`.
import type { Lab, LabProcess } from './lab.js';

/**
 * Resolves once every "ip:port" of `want` is a listening UDP socket in `host`; rejects with the
 * server's own output if it exits first or the time runs out.
 */
export async function waitForUdpListeners(lab: Lab, host: string, child: LabProcess, want: readonly string[], what: string, timeoutMs: number): Promise<void> {
  let log = '';
  const keep = (d: Buffer): void => {
    // Only the start of the output, for error messages: servers can be chatty.
    if (log.length < 20_000) log += d.toString();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited = false;
  const onExit = (): void => {
    exited = true;
  };
  child.once('exit', onExit);
  const deadline = Date.now() + timeoutMs;
  try {
    while (true) {
      const ss = await lab.exec(host, 'ss', ['-Hnlu']);
      if (want.every((w) => ss.stdout.includes(w))) return;
      if (exited) throw new Error(`${what} in ${host} exited:\n${log}`);
      if (Date.now() > deadline) throw new Error(`${what} in ${host} not listening after ${timeoutMs} ms:\n${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    child.stdout?.off('data', keep);
    child.stderr?.off('data', keep);
    child.off('exit', onExit);
  }
}
