// What each protocol can do for a port right now, for `traverse netcheck`: probe all three, then
// with each one that answered make a short-lived mapping (to learn the external address it really
// gives) and delete it again. A running node reports its keeper's state instead.
import { PortMapClient, PROTOCOLS, type Mapping, type PortMapClientOptions, type ProtocolStatus } from './client.js';
import { defaultGateway, type Gateway } from './gateway.js';

export interface PortMapFindings {
  readonly gateway: string | null;
  readonly pcp: ProtocolStatus;
  readonly natpmp: ProtocolStatus;
  readonly upnp: ProtocolStatus;
  /** The mapping the node would use (the preferred protocol's), or null. */
  readonly mapping: Mapping | null;
}

const NO_GATEWAY: ProtocolStatus = { available: false, reason: 'no default gateway' };

export async function surveyPortMapping(
  internalPort: number,
  o: { readonly gateway?: () => Gateway | null; readonly client?: Omit<PortMapClientOptions, 'gateway'> } = {},
): Promise<PortMapFindings> {
  const gw = (o.gateway ?? defaultGateway)();
  if (!gw) return { gateway: null, pcp: NO_GATEWAY, natpmp: NO_GATEWAY, upnp: NO_GATEWAY, mapping: null };
  const client = new PortMapClient({ ...o.client, gateway: gw });
  // netcheck reports every protocol: the whole probe, not just the preferred answer.
  const probe = await (await client.probe()).complete;
  // Short lifetime: if the delete is lost, the router forgets it within two minutes anyway.
  const results = await Promise.all(
    PROTOCOLS.map(async (p): Promise<{ status: ProtocolStatus; mapping: Mapping | null }> => {
      const st = probe[p];
      if (!st.available) return { status: st, mapping: null };
      try {
        const m = await client.map(p, internalPort, 120, probe);
        await client.unmap(m);
        return { status: { available: true, externalAddress: m.externalAddress }, mapping: m };
      } catch (err) {
        return { status: { available: false, reason: `answered, but mapping failed: ${(err as Error).message.replace(/^\w+: /, '')}` }, mapping: null };
      }
    }),
  );
  const [pcp, natpmp, upnp] = results as [(typeof results)[0], (typeof results)[0], (typeof results)[0]];
  return { gateway: gw.address, pcp: pcp.status, natpmp: natpmp.status, upnp: upnp.status, mapping: pcp.mapping ?? natpmp.mapping ?? upnp.mapping };
}
