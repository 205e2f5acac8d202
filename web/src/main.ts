// The operators' dashboard: sign in with an admin token, then the live views. Tabs follow the
// URL's fragment (#tunnels), which carries no secret.
import { html, render } from 'htm/preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { VNode } from 'preact';
import * as api from './api.js';
import { emptyState, follow, type LiveState } from './live.js';
import { NodesView } from './views/nodes.js';
import { TunnelsView } from './views/tunnels.js';
import { HistoryView } from './views/history.js';
import { HealthView } from './views/health.js';
import { TokensView } from './views/tokens.js';
import { MatrixView } from './views/matrix.js';

const TABS = ['nodes', 'tunnels', 'history', 'health', 'tokens', 'matrix'] as const;
type Tab = (typeof TABS)[number];

function tabFromHash(): Tab {
  const t = location.hash.slice(1);
  return (TABS as readonly string[]).includes(t) ? (t as Tab) : 'nodes';
}

function SignIn({ onSignedIn }: { onSignedIn: (name: string) => void }): VNode {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = (e: Event): void => {
    e.preventDefault();
    const form = e.target as HTMLFormElement;
    const token = String(new FormData(form).get('token') ?? '');
    setBusy(true);
    api
      .signIn(token)
      .then((s) => {
        form.reset();
        onSignedIn(s.name ?? '');
      })
      .catch((err: Error) => setError(err.message))
      .finally(() => setBusy(false));
  };
  return html`<main class="signin">
    <h1>Traverse</h1>
    <form method="post" action="/dashboard/api/session" onSubmit=${submit}>
      <label for="token">Admin token</label>
      <input id="token" name="token" type="password" autocomplete="off" spellcheck="false" required placeholder="trv1_..." />
      <button type="submit" disabled=${busy}>Sign in</button>
      ${error ? html`<p class="error" role="alert">${error}</p>` : null}
      <p class="muted">Create one with <code>traverse token create --admin NAME</code>. The token is exchanged for a session cookie and is not kept by the page.</p>
    </form>
  </main>`;
}

function Dashboard({ name, onSignedOut }: { name: string; onSignedOut: () => void }): VNode {
  const state: LiveState = useMemo(emptyState, []);
  const [, setVersion] = useState(0);
  const [tab, setTab] = useState<Tab>(tabFromHash());
  useEffect(() => follow(state, () => setVersion(state.version), onSignedOut), []);
  useEffect(() => {
    const onHash = (): void => setTab(tabFromHash());
    window.addEventListener('hashchange', onHash);
    // Ages ("5 s ago") move on even when nothing else changes.
    const tick = setInterval(() => setVersion((v) => v + 1), 1000);
    return () => {
      window.removeEventListener('hashchange', onHash);
      clearInterval(tick);
    };
  }, []);
  const now = Date.now() + state.serverSkewMs;
  const warnings = state.health.length;
  const view =
    tab === 'nodes' ? html`<${NodesView} state=${state} now=${now} />`
    : tab === 'tunnels' ? html`<${TunnelsView} state=${state} now=${now} />`
    : tab === 'history' ? html`<${HistoryView} state=${state} now=${now} />`
    : tab === 'health' ? html`<${HealthView} state=${state} />`
    : tab === 'tokens' ? html`<${TokensView} state=${state} now=${now} />`
    : html`<${MatrixView} state=${state} />`;
  const signOut = (): void => void api.signOut().finally(onSignedOut);
  return html`<div class="app" data-connected=${state.connected ? 'yes' : 'no'}>
    <header>
      <strong>Traverse</strong>
      <nav>${TABS.map((t) => html`<a key=${t} href=${`#${t}`} class=${t === tab ? 'active' : ''} data-tab=${t}>${t}${t === 'health' && warnings > 0 ? html` <span class="count">${warnings}</span>` : null}</a>`)}</nav>
      <span class=${`live ${state.connected ? 'on' : 'off'}`}>${state.connected ? 'live' : 'reconnecting…'}</span>
      <span class="who">${name}</span>
      <button onClick=${signOut}>Sign out</button>
    </header>
    <main data-view=${tab}>${view}</main>
  </div>`;
}

function App(): VNode {
  const [who, setWho] = useState<string | null | undefined>(undefined);
  useEffect(() => {
    api
      .session()
      .then((s) => setWho(s.signedIn ? (s.name ?? '') : null))
      .catch(() => setWho(null));
  }, []);
  if (who === undefined) return html`<p class="muted">Loading…</p>`;
  if (who === null) return html`<${SignIn} onSignedIn=${setWho} />`;
  return html`<${Dashboard} name=${who} onSignedOut=${() => setWho(null)} />`;
}

render(html`<${App} />`, document.getElementById('app')!);
