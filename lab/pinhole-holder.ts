// Holds an IPv6 pinhole for a port with the node's own PinholeKeeper, run inside a lab namespace
// (`ip netns exec NS node pinhole-holder.js PORT`), so a lab test can send unsolicited packets to a
// socket of its own (udp-peer.js) through the router's firewall. Reports JSON lines on stdout:
//   {"event":"status","status":{...PinholeStatus}}   after the first request and on every change
//   {"event":"closed"}                                after SIGTERM, once the pinhole is deleted
import { PinholeKeeper } from '../src/portmap/pinhole.js';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  process.stderr.write('usage: pinhole-holder.js PORT\n');
  process.exit(2);
}
const emit = (o: Record<string, unknown>): void => void process.stdout.write(JSON.stringify(o) + '\n');
const keeper = new PinholeKeeper({ internalPort: port, onChange: () => emit({ event: 'status', status: keeper.status }) });
void keeper.ready.then(() => emit({ event: 'status', status: keeper.status }));
// The keeper's timer does not hold the process; this does, until SIGTERM.
const alive = setInterval(() => undefined, 1 << 30);
process.once('SIGTERM', () => {
  void keeper.close().then(() => {
    emit({ event: 'closed' });
    clearInterval(alive);
  });
});
