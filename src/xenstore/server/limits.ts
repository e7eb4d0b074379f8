/**
 * Quotas and limits: C xenstored's defaults (tools/xenstored/domain.c `quotas[]`, core.c), each
 * naming the attacker it bounds. A `Limits` object is immutable; SET_QUOTA changes a separate
 * runtime table (`QuotaTable`) seeded from it.
 *
 * Quotas apply to unprivileged domains only (dom0 and the priv domain are exempt, as in C);
 * queue bounds (watch events, output) apply to every connection (reliability.md H11).
 */
import { REL_PATH_MAX } from '../protocol/index.js';

export interface Limits {
  /** `nodes`: nodes a domain may own (XSA-326: a guest filling the store). */
  readonly nodes: number;
  /** `watches`: watches per domain. */
  readonly watches: number;
  /** `outstanding`: requests of a domain whose replies it has not consumed; input pauses at it. */
  readonly outstanding: number;
  /** `memory`: bytes a domain's nodes and watches may use (hard limit, ENOSPC beyond). */
  readonly memory: number;
  /** `soft-memory`: warning level only (counted in `stats.softMemoryWarnings`). */
  readonly softMemory: number;
  /** `transactions`: concurrent transactions per domain. */
  readonly transactions: number;
  /** `transaction-nodes`: nodes one transaction may access. */
  readonly transactionNodes: number;
  /** `node-permissions`: entries in one node's permission list. */
  readonly nodePermissions: number;
  /** `path-max`: path length, not counting a `/local/domain/<id>/` prefix. */
  readonly pathMax: number;
  /** `node-size`: permissions + value + child names of one node, bytes. */
  readonly nodeSize: number;
  /** Unread watch events of an unprivileged domain expire after this (C: -w watch-event=20). */
  readonly watchEventTimeoutMs: number;
  /** Pending watch events per connection; more are dropped (oxenstored quota-maxwatchevents). */
  readonly watchEventQueue: number;
  /** Pending replies per connection before its input is paused (dom0 included). */
  readonly replyQueue: number;
  /** Write rate limit per unprivileged domain, writes per second (C WRL_RATE). */
  readonly writeRate: number;
  /** Write burst per unprivileged domain (C WRL_DBURST). */
  readonly writeBurst: number;
}

export const DEFAULT_LIMITS: Limits = Object.freeze({
  nodes: 1000,
  watches: 128,
  outstanding: 20,
  memory: 2 * 1024 * 1024 + 512 * 1024,
  softMemory: 2 * 1024 * 1024,
  transactions: 10,
  transactionNodes: 1024,
  nodePermissions: 5,
  pathMax: REL_PATH_MAX,
  nodeSize: 2048,
  watchEventTimeoutMs: 20_000,
  watchEventQueue: 1024,
  replyQueue: 1024,
  writeRate: 200,
  writeBurst: 10,
});

/** A validated, frozen Limits: defaults overridden by `overrides`. */
export function makeLimits(overrides: Partial<Limits> = {}): Limits {
  const out = { ...DEFAULT_LIMITS, ...overrides };
  for (const [k, v] of Object.entries(out)) {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`limit ${k} must be a positive integer, got ${v}`);
  }
  return Object.freeze(out);
}

/**
 * The quota names of GET_QUOTA/SET_QUOTA (C `quota_adm[]`, in its ACC_* order), mapped to Limits
 * keys. C lists a soft quota as its name with a prefix; we spell it `soft-memory`.
 */
export const QUOTA_NAMES = {
  nodes: 'nodes',
  watches: 'watches',
  outstanding: 'outstanding',
  memory: 'memory',
  'soft-memory': 'softMemory',
  transactions: 'transactions',
  'transaction-nodes': 'transactionNodes',
  'node-permissions': 'nodePermissions',
  'path-max': 'pathMax',
  'node-size': 'nodeSize',
} as const satisfies Record<string, keyof Limits>;

export type QuotaName = keyof typeof QUOTA_NAMES;
export type QuotaKey = (typeof QUOTA_NAMES)[QuotaName];

export function isQuotaName(s: string): s is QuotaName {
  return Object.hasOwn(QUOTA_NAMES, s);
}

/** Runtime quota values: global ones plus per-domain overrides (SET_QUOTA [domid]). */
export class QuotaTable {
  private readonly global = new Map<QuotaKey, number>();
  private readonly perDomain = new Map<number, Map<QuotaKey, number>>();

  constructor(readonly limits: Limits) {}

  getGlobal(key: QuotaKey): number {
    return this.global.get(key) ?? this.limits[key];
  }

  get(domid: number, key: QuotaKey): number {
    return this.perDomain.get(domid)?.get(key) ?? this.global.get(key) ?? this.limits[key];
  }

  set(domid: number | undefined, key: QuotaKey, value: number): void {
    if (domid === undefined) {
      this.global.set(key, value);
      return;
    }
    let m = this.perDomain.get(domid);
    if (m === undefined) this.perDomain.set(domid, (m = new Map()));
    m.set(key, value);
  }

  /** A released domain's overrides go with it: a reused domid inherits nothing. */
  forget(domid: number): void {
    this.perDomain.delete(domid);
  }

  snapshot(): { global: [QuotaKey, number][]; perDomain: [number, [QuotaKey, number][]][] } {
    return {
      global: [...this.global],
      perDomain: [...this.perDomain].map(([d, m]) => [d, [...m]]),
    };
  }

  restore(s: ReturnType<QuotaTable['snapshot']>): void {
    this.global.clear();
    this.perDomain.clear();
    for (const [k, v] of s.global) this.global.set(k, v);
    for (const [d, entries] of s.perDomain) this.perDomain.set(d, new Map(entries));
  }
}
