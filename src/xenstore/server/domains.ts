/**
 * Domain records (C struct domain): one per domain the store knows of — introduced ones, and
 * ones named by a permission entry. Each has the global generation at its creation: a
 * permission entry is honoured only for a domain at least as old as the node's last write, so
 * a new domain reusing a domid inherits nothing from its predecessor (XSA-322).
 */
import type { NodePerm, XsNode } from './tree.js';

/** DOMID_ANY (xen.h 0x7FF5): with XENSTORE_SERVER_FEATURE_DOMID_ANY, an entry for all domains. */
export const DOMID_ANY = 0x7ff5;

export interface DomainRecord {
  readonly domid: number;
  /** Global generation when this record was created. */
  readonly generation: number;
  introduced: boolean;
  /** Shut down (RELEASE was not yet seen); RESUME clears it. */
  shutdown: boolean;
  /** SET_TARGET: this domain (a device-model stubdom) acts with `target`'s rights. */
  target?: number;
  /** Features offered to this domain (SET_FEATURE before INTRODUCE); server features by default. */
  features: number;
  /** Ring-page interface info from INTRODUCE (to recognise a re-INTRODUCE). */
  gfn?: number;
  port?: number;
  /** Write rate limit bucket (credit in writes; refilled at limits.writeRate per second). */
  wrlCredit: number;
  wrlStamp: number;
}

export interface Caller {
  readonly domid: number;
  /** dom0 / the priv domain: every check passes, quotas do not apply. */
  readonly privileged: boolean;
  /** SET_TARGET of the caller's domain. */
  readonly target?: number;
}

export interface Access {
  readonly read: boolean;
  readonly write: boolean;
  readonly owner: boolean;
}

const ALL: Access = { read: true, write: true, owner: true };

function fromChar(c: NodePerm['access']): Access {
  return { read: c === 'r' || c === 'b', write: c === 'w' || c === 'b', owner: false };
}

export class Domains {
  private readonly records = new Map<number, DomainRecord>();

  constructor(
    private readonly generationNow: () => number,
    readonly defaultFeatures: number,
    readonly privDomids: ReadonlySet<number>,
  ) {}

  get(domid: number): DomainRecord | undefined {
    return this.records.get(domid);
  }

  all(): IterableIterator<DomainRecord> {
    return this.records.values();
  }

  /** The record of `domid`, created now if missing (generation = the current one, not incremented). */
  ensure(domid: number, generation = this.generationNow()): DomainRecord {
    let d = this.records.get(domid);
    if (d === undefined) {
      d = {
        domid,
        generation,
        introduced: false,
        shutdown: false,
        features: this.defaultFeatures,
        wrlCredit: 0,
        wrlStamp: 0,
      };
      this.records.set(domid, d);
    }
    return d;
  }

  delete(domid: number): void {
    this.records.delete(domid);
  }

  isPrivileged(domid: number): boolean {
    return this.privDomids.has(domid);
  }

  /** May a permission entry naming `domid` be kept when a node is written? */
  isLive(domid: number): boolean {
    return domid === DOMID_ANY || this.isPrivileged(domid) || this.records.has(domid);
  }

  /** Is an entry for `domid` valid on a node last written at `nodeGeneration`? */
  private honours(domid: number, nodeGeneration: number): boolean {
    if (domid === DOMID_ANY || this.isPrivileged(domid)) return true;
    const d = this.records.get(domid);
    return d !== undefined && d.generation <= nodeGeneration;
  }

  /** core.c perm_for_conn: owners and tools get it all, else the first matching entry, else the default. */
  accessFor(caller: Caller, node: XsNode): Access {
    const owner = node.perms[0]!.domid;
    if (caller.privileged || owner === caller.domid || (caller.target !== undefined && owner === caller.target)) {
      return ALL;
    }
    for (let i = 1; i < node.perms.length; i++) {
      const p = node.perms[i]!;
      if (p.ignored === true || !this.honours(p.domid, node.generation)) continue;
      if (p.domid === caller.domid || p.domid === DOMID_ANY || (caller.target !== undefined && p.domid === caller.target)) {
        return fromChar(p.access);
      }
    }
    return fromChar(node.perms[0]!.access);
  }
}
