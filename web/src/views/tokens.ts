// Tokens: create one (shown once, here only), revoke any, and edit a client's allow list.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import type { VNode } from 'preact';
import type { IdentityRow, TokenRow } from '../../../src/server/dashboard/wire.js';
import type { LiveState } from '../live.js';
import { post } from '../api.js';
import { stamp } from '../format.js';

interface Created {
  readonly kind: string;
  readonly name: string;
  readonly token: string;
}

function tokenState(t: TokenRow, now: number): string {
  if (t.revokedAt !== null) return `revoked ${stamp(t.revokedAt)}`;
  if (t.expiresAt !== null && t.expiresAt <= now) return `expired ${stamp(t.expiresAt)}`;
  return t.expiresAt === null ? 'valid, never expires' : `valid until ${stamp(t.expiresAt)}`;
}

function CreateForm({ onCreated }: { onCreated: (c: Created) => void }): VNode {
  const [error, setError] = useState<string | null>(null);
  const submit = (e: Event): void => {
    e.preventDefault();
    const f = new FormData(e.target as HTMLFormElement);
    const kind = String(f.get('kind'));
    const days = String(f.get('days') ?? '').trim();
    const allow = String(f.get('allow') ?? '').split(/[\s,]+/).filter(Boolean);
    post<Created>('/dashboard/api/tokens', {
      kind,
      name: String(f.get('name')).trim(),
      expiresInDays: days ? Number(days) : null,
      ...(kind === 'client' ? { allow } : {}),
    })
      .then((c) => {
        setError(null);
        (e.target as HTMLFormElement).reset();
        onCreated(c);
      })
      .catch((err: Error) => setError(err.message));
  };
  return html`<form class="create" onSubmit=${submit}>
    <select name="kind"><option value="client">client</option><option value="agent">agent</option><option value="admin">admin</option></select>
    <input name="name" placeholder="name" required pattern="[A-Za-z0-9][A-Za-z0-9._\\-]*" maxlength="64" />
    <input name="days" type="number" min="1" max="3650" placeholder="expires (days)" title="days until it expires; empty: never" />
    <input name="allow" placeholder="allow agents (clients: a, b)" />
    <button type="submit">Create token</button>
    ${error ? html`<p class="error">${error}</p>` : null}
  </form>`;
}

function AllowEditor({ identity }: { identity: IdentityRow }): VNode {
  const [text, setText] = useState<string | null>(null);
  const [msg, setMsg] = useState<string | null>(null);
  const value = text ?? identity.allow.join(', ');
  const save = (e: Event): void => {
    e.preventDefault();
    post<{ allow: string[] }>('/dashboard/api/allow', { client: identity.name, agents: value.split(/[\s,]+/).filter(Boolean) })
      .then((r) => {
        setText(null);
        setMsg(`saved: ${r.allow.join(', ') || 'no agents'}`);
      })
      .catch((err: Error) => setMsg(err.message));
  };
  return html`<form class="allow" onSubmit=${save} data-allow=${identity.name}>
    allows <input value=${value} onInput=${(e: Event) => setText((e.target as HTMLInputElement).value)} placeholder="no agents" />
    <button type="submit">Save</button> ${msg ? html`<span class="muted">${msg}</span>` : null}
  </form>`;
}

export function TokensView({ state, now }: { state: LiveState; now: number }): VNode {
  const [created, setCreated] = useState<Created | null>(null);
  const [error, setError] = useState<string | null>(null);
  const revoke = (t: TokenRow, who: string): void => {
    if (!window.confirm(`Revoke token ${t.hint} of ${who}? Its nodes are disconnected at once.`)) return;
    post('/dashboard/api/tokens/revoke', { tokenId: t.id })
      .then(() => setError(null))
      .catch((err: Error) => setError(err.message));
  };
  const list = [...state.identities.values()].sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name));
  return html`<section>
    <${CreateForm} onCreated=${setCreated} />
    ${created
      ? html`<div class="created" data-created=${created.name}>
          <p>New ${created.kind} token for <strong>${created.name}</strong>. Copy it now: it is not shown again.</p>
          <code class="token">${created.token}</code> <button onClick=${() => setCreated(null)}>Done</button>
        </div>`
      : null}
    ${error ? html`<p class="error">${error}</p>` : null}
    <table class="tokens">
      <thead><tr><th>identity</th><th>token</th><th>created</th><th>state</th><th></th></tr></thead>
      ${list.map(
        (i) => html`<tbody key=${i.id} data-identity=${i.id}>
          <tr class="identity-head"><th colspan="5"><span class=${`kind ${i.kind}`}>${i.kind}</span> ${i.name}
            ${i.kind === 'client' ? html`<${AllowEditor} identity=${i} />` : null}</th></tr>
          ${i.tokens.map(
            (t) => html`<tr key=${t.id} data-token=${t.hint}>
              <td></td><td class="mono">${t.hint}</td><td>${stamp(t.createdAt)}</td><td>${tokenState(t, now)}</td>
              <td>${t.revokedAt === null ? html`<button class="danger" data-revoke=${t.hint} onClick=${() => revoke(t, `${i.kind} "${i.name}"`)}>Revoke</button>` : null}</td>
            </tr>`,
          )}
        </tbody>`,
      )}
    </table>
  </section>`;
}
