// Warnings a person can act on, from what the dashboard already knows: the nodes' own netcheck
// summaries and the tokens. Pure, so every rule is tested; the sentences say what to do next.
import type { IdentityRow, NodeRow, Warning } from './wire.js';
import { splitEndpoint } from '../../net/endpoint.js';

/** Tokens expiring within this long are flagged. */
export const EXPIRY_WARNING_MS = 7 * 86_400_000;

export function healthWarnings(nodes: readonly NodeRow[], identities: readonly IdentityRow[], now: number): Warning[] {
  const out: Warning[] = [];
  for (const n of nodes) {
    // A netcheck that names no silent STUN server asked none: STUN is off, not UDP blocked.
    if (n.netcheck?.udp === false && n.netcheck.stunUnanswered?.length === 0) {
      out.push({
        id: `nostun:${n.id}`,
        level: 'info',
        title: `${n.kind} "${n.name}" has no STUN server to ask`,
        advice: 'its NAT is unknown and it publishes no public address, so it can go direct only on a shared network: start the server with its embedded STUN server or --stun HOST:PORT',
      });
      continue;
    }
    if (n.netcheck?.udp === false) {
      out.push({
        id: `udp:${n.id}`,
        level: 'warn',
        title: `UDP is blocked for ${n.kind} "${n.name}"${n.remote ? ` (${n.remote})` : ''}`,
        advice: 'its tunnels go through the relay: allow outbound UDP on its network (or check that its STUN servers are up) for direct paths',
      });
    }
  }
  // Several nodes behind one public address whose NAT does not hairpin: they reach each other only
  // through the relay unless an internal STUN server shows them their inside addresses.
  const byIp = new Map<string, NodeRow[]>();
  for (const n of nodes) {
    if (n.netcheck?.hairpinning !== false) continue;
    const ip = n.netcheck.globalV4 ? splitEndpoint(n.netcheck.globalV4)?.address : undefined;
    if (!ip) continue;
    byIp.set(ip, [...(byIp.get(ip) ?? []), n]);
  }
  for (const [ip, behind] of byIp) {
    if (behind.length < 2) continue;
    const names = [...new Set(behind.map((n) => `${n.kind} "${n.name}"`))];
    out.push({
      id: `hairpin:${ip}`,
      level: 'warn',
      title: `${behind.length} nodes behind ${ip}, a NAT that does not hairpin (${names.slice(0, 4).join(', ')}${names.length > 4 ? ', ...' : ''})`,
      advice: 'they cannot reach each other directly through it: run an internal STUN server on their network and publish it (traverse server --stun HOST:PORT), or enable hairpinning on the NAT',
    });
  }
  // STUN servers some node could not reach while others (or it) reached another: the server is down
  // or filtered, not the node's UDP.
  const silent = new Map<string, number>();
  for (const n of nodes) {
    if (n.netcheck?.udp !== true) continue;
    for (const s of n.netcheck.stunUnanswered ?? []) silent.set(s, (silent.get(s) ?? 0) + 1);
  }
  for (const [server, count] of silent) {
    out.push({
      id: `stun:${server}`,
      level: 'warn',
      title: `STUN server ${server} does not answer (${count} node${count === 1 ? '' : 's'})`,
      advice: 'check that it runs and that UDP reaches it, or drop it from --stun: nodes wait for it on every netcheck',
    });
  }
  for (const i of identities) {
    for (const t of i.tokens) {
      if (t.revokedAt !== null || t.expiresAt === null || t.expiresAt <= now) continue;
      if (t.expiresAt - now > EXPIRY_WARNING_MS) continue;
      const days = Math.max(0, Math.round((t.expiresAt - now) / 86_400_000));
      out.push({
        id: `expiry:${t.id}`,
        level: 'info',
        title: `the token ${t.hint} of ${i.kind} "${i.name}" expires ${days === 0 ? 'within a day' : `in ${days} day${days === 1 ? '' : 's'}`}`,
        advice: `create a new one (Tokens view, or traverse token rotate --${i.kind} ${i.name}) before ${new Date(t.expiresAt).toISOString().slice(0, 16).replace('T', ' ')} UTC`,
      });
    }
  }
  return out;
}
