// Which of a peer's answering endpoints carries its traffic. Pure and clock-injected (the caller
// passes `now` and the time of the last switch), so the rules are tested without sleeps.
//
//   1. A LAN path (private address) beats a public one: it stays inside the network.
//   2. Otherwise the lower round trip wins, but only clearly: a move costs something (streams
//      follow the path, a TCP lane is offered again), so jitter must not cause one.
//   3. Between families (an IPv4 path and an IPv6 one to the same peer), the bar is higher and a
//      move back is not allowed for a while after the last move: two paths of about the same
//      round trip over different networks would otherwise take turns as their samples cross.
// A path that stopped answering is not an option at all: the caller passes only trusted ones.
import { ipFamily } from '../net/ip.js';
import { splitEndpoint } from '../net/endpoint.js';

export interface PathOption {
  readonly endpoint: string;
  /** On a private (LAN) address. */
  readonly private: boolean;
  /** Smoothed round trip in ms; null before the first pong. */
  readonly latencyMs: number | null;
}

export interface ChoiceRules {
  /** Same family: the newcomer's round trip must be below this fraction of the current one... */
  readonly sameFamilyRatio: number;
  /** ...and at least this many ms lower. */
  readonly sameFamilyMarginMs: number;
  /** Across families: the same two bars, higher. */
  readonly crossFamilyRatio: number;
  readonly crossFamilyMarginMs: number;
  /** No move to the other family within this long after the last move (ms). */
  readonly crossFamilyHoldMs: number;
}

export const DEFAULT_CHOICE_RULES: ChoiceRules = {
  sameFamilyRatio: 0.8,
  sameFamilyMarginMs: 2,
  crossFamilyRatio: 0.7,
  crossFamilyMarginMs: 5,
  crossFamilyHoldMs: 30_000,
};

/** The family of an endpoint's address (4 or 6), 0 if it is not one. */
export function endpointFamily(endpoint: string): 4 | 6 | 0 {
  const ep = splitEndpoint(endpoint);
  return ep ? ipFamily(ep.address) : 0;
}

/**
 * The option to use: `current` kept unless one of `trusted` is clearly better by the rules
 * above. `trusted` are the options that answered recently; `current` is kept only if among them.
 * `lastSwitchAt` is when the choice last changed (null: never). Null when nothing is trusted.
 */
export function choosePath<T extends PathOption>(
  current: T | null,
  trusted: readonly T[],
  now: number,
  lastSwitchAt: number | null,
  rules: ChoiceRules = DEFAULT_CHOICE_RULES,
): T | null {
  if (trusted.length === 0) return null;
  const ranked = [...trusted].sort((a, b) => Number(b.private) - Number(a.private) || (a.latencyMs ?? Infinity) - (b.latencyMs ?? Infinity));
  const top = ranked[0]!;
  const cur = current && trusted.includes(current) ? current : null;
  if (!cur) return top;
  if (top === cur) return cur;
  if (top.private && !cur.private) return top;
  if (top.private !== cur.private) return cur;
  const t = top.latencyMs ?? Infinity;
  const c = cur.latencyMs ?? Infinity;
  if (endpointFamily(top.endpoint) === endpointFamily(cur.endpoint)) {
    return t < rules.sameFamilyRatio * c && c - t >= rules.sameFamilyMarginMs ? top : cur;
  }
  // Another family: a better candidate of the current family may still win on the lower bar.
  const sameFamily = ranked.find((o) => o !== cur && o.private === cur.private && endpointFamily(o.endpoint) === endpointFamily(cur.endpoint));
  const holding = lastSwitchAt !== null && now - lastSwitchAt < rules.crossFamilyHoldMs;
  if (!holding && t < rules.crossFamilyRatio * c && c - t >= rules.crossFamilyMarginMs) return top;
  if (sameFamily) {
    const s = sameFamily.latencyMs ?? Infinity;
    if (s < rules.sameFamilyRatio * c && c - s >= rules.sameFamilyMarginMs) return sameFamily;
  }
  return cur;
}
