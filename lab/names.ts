// Names of lab objects. Every namespace a run creates starts with `trv-<pid>-<tag>-`, so that
// parallel runs never collide and a sweep can tell a dead run's leftovers (pid gone) from a live
// run's namespaces. Namespaces made by `cli.js up --detach` use `trv-keep-<tag>-` instead: they
// belong to a human and only `down` removes them.
import { randomBytes } from 'node:crypto';

const PREFIX_RE = /^trv-(\d+|keep)-([0-9a-f]{4})-/;

/** A fresh prefix for one lab, owned by `pid` (default: this process). */
export function newPrefix(pid: number | 'keep' = process.pid): string {
  return `trv-${pid}-${randomBytes(2).toString('hex')}-`;
}

export interface ParsedPrefix {
  readonly prefix: string;
  /** The creating process, or 'keep' for a detached human-made lab. */
  readonly owner: number | 'keep';
}

/** Parses a namespace name made by `newPrefix`; undefined for anything else (not ours). */
export function parseNamespace(ns: string): ParsedPrefix | undefined {
  const m = PREFIX_RE.exec(ns);
  if (!m || m[1] === undefined) return undefined;
  return { prefix: m[0], owner: m[1] === 'keep' ? 'keep' : Number(m[1]) };
}

/** Node names become namespace suffixes and, on bridges, part of interface names. */
export function checkNodeName(name: string): void {
  if (!/^[a-z][a-z0-9]{0,9}$/.test(name)) {
    throw new Error(`lab node name "${name}" must be 1-10 lowercase letters/digits starting with a letter`);
  }
}

/** Linux limits interface names to IFNAMSIZ-1 = 15 bytes; fail early with a clear message. */
export function checkIfName(name: string): string {
  if (name.length === 0 || name.length > 15 || /[\s/:]/.test(name)) {
    throw new Error(`interface name "${name}" is invalid (1-15 chars, no spaces, '/' or ':')`);
  }
  return name;
}
