// Token kinds are checked where they are used: a node says which role it wants (the ROLE_HEADER
// of its upgrade request) and the server compares it with the kind of the token, before the node
// joins. The message names both, so the user knows which token to use instead.
import type { Identity } from './store/store.js';

export interface RoleProblem {
  readonly status: 400 | 403;
  readonly message: string;
}

const NEEDS: Record<'agent' | 'client', string> = {
  agent: '`traverse agent` needs an agent token (traverse token create --agent NAME)',
  client: 'this command needs a client token (traverse token create --client NAME --allow AGENT)',
};

export function roleProblem(header: string | string[] | undefined, identity: Pick<Identity, 'kind' | 'name'>): RoleProblem | null {
  const role = Array.isArray(header) ? header[0] : header;
  if (role !== 'agent' && role !== 'client') {
    return { status: 400, message: 'the upgrade request must say the role it joins as (x-traverse-role: agent or client)' };
  }
  if (identity.kind === role) return null;
  return { status: 403, message: `${NEEDS[role]}; the token given is the ${identity.kind} token of "${identity.name}"` };
}
