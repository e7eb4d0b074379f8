/**
 * One client of the store (C struct connection): its transport, its bounded output queue, its
 * watches and transactions. Transports (unix socket, guest ring page) only move bytes; every
 * protocol decision is made by the daemon (`xenstored.ts`).
 *
 * Output is bounded two ways (XSA-326): replies count against the `outstanding` quota of
 * unprivileged domains and `replyQueue` for everyone (input pauses at the bound, so a client
 * that does not read its replies stops being served); watch events are deduplicated, expire
 * after `watchEventTimeoutMs` for unprivileged domains, and beyond `watchEventQueue` are dropped.
 */
import { trackResource } from '../../base/index.js';
import { FrameParser } from '../protocol/index.js';
import type { ChangeSet } from './changeset.js';

/** What a transport gives the daemon. */
export interface Transport {
  /** Hand one whole message to the peer. Only called while `writable()`. */
  write(bytes: Uint8Array): void;
  /** False while the peer is not keeping up; the transport calls `onWritable` when it is again. */
  writable(): boolean;
  /** Stop / resume reading input (back-pressure). */
  pauseInput(): void;
  resumeInput(): void;
  /** Tear down; `reason` is recorded for a bad client (ring: the `error` field). */
  close(reason?: 'proto' | 'ringidx' | 'comm'): void;
  /** Which kind, for logs and tests. */
  readonly kind: 'socket' | 'ring' | 'local';
  /** Where the transport stands, for `xenstore-control connections` (a ring: its indices). */
  describe?(): string;
}

export interface Watch {
  /** Canonical path (absolute, or `@…`). */
  readonly path: string;
  readonly token: string;
  /** Characters to strip from event paths: the home prefix of a relative watch, else 0. */
  readonly prefixLen: number;
  readonly depth?: number;
}

export interface Transaction {
  readonly id: number;
  readonly cs: ChangeSet;
  release(): void;
}

interface OutMsg {
  readonly bytes: Uint8Array;
  readonly event: boolean;
  /** Watch events of unprivileged domains expire at this time (ms), else 0. */
  readonly deadline: number;
}

let nextConnId = 1;

export class Connection {
  readonly id = nextConnId++;
  readonly parser = new FrameParser();
  readonly watches = new Map<string, Watch>();
  readonly transactions = new Map<number, Transaction>();
  nextTxId = 1;
  bad = false;
  closed = false;
  /** Requests seen, replies queued, events dropped: for stats and tests. */
  readonly stats = { requests: 0, replies: 0, events: 0, droppedEvents: 0, expiredEvents: 0 };

  private readonly out: (OutMsg | undefined)[] = [];
  private outHead = 0;
  private pendingReplies = 0;
  private pendingEvents = 0;
  private readonly pauseReasons = new Set<'replies' | 'rate'>();
  private readonly untrack: () => void;

  constructor(
    readonly transport: Transport,
    /** The domain this connection speaks for (0 for the socket). */
    readonly domid: number,
    private readonly bounds: { replies: () => number; events: number },
  ) {
    this.untrack = trackResource('xs-connection', `${transport.kind} d${domid} #${this.id}`);
  }

  static watchKey(path: string, token: string): string {
    return `${path}\0${token}`;
  }

  /** One line for `xenstore-control connections`: what is queued, paused and registered. */
  describe(): string {
    const paused = this.pauseReasons.size > 0 ? ` input paused (${[...this.pauseReasons].join(', ')})` : '';
    const t = this.transport.describe?.();
    return `#${this.id} d${this.domid} ${this.transport.kind}${this.bad ? ' bad' : ''}${this.closed ? ' closed' : ''}: ` +
      `${this.stats.requests} requests, ${this.pendingReplies} replies and ${this.pendingEvents} events queued,${paused} ` +
      `${this.watches.size} watches, ${this.transactions.size} transactions${t === undefined ? '' : `; ${t}`}`;
  }

  get queuedReplies(): number {
    return this.pendingReplies;
  }

  get queuedEvents(): number {
    return this.pendingEvents;
  }

  queueReply(bytes: Uint8Array): void {
    this.out.push({ bytes, event: false, deadline: 0 });
    this.pendingReplies++;
    this.stats.replies++;
  }

  /**
   * Queue a watch event unless an identical one is already pending (C send_event: "Check
   * whether an identical event is pending already. Special events are excluded") or the
   * event queue is full (then it is dropped and counted).
   */
  queueEvent(bytes: Uint8Array, special: boolean, deadline: number): void {
    if (!special && this.hasPendingEvent(bytes)) return;
    if (this.pendingEvents >= this.bounds.events) {
      this.stats.droppedEvents++;
      return;
    }
    this.out.push({ bytes, event: true, deadline });
    this.pendingEvents++;
    this.stats.events++;
  }

  private hasPendingEvent(bytes: Uint8Array): boolean {
    for (let i = this.outHead; i < this.out.length; i++) {
      const m = this.out[i]!;
      if (m.event && equalBytes(m.bytes, bytes)) return true;
    }
    return false;
  }

  /** Move queued messages to the transport while it accepts them; expire stale events. */
  flush(now: number): void {
    if (this.closed) return;
    while (this.outHead < this.out.length && this.transport.writable()) {
      const m = this.out[this.outHead]!;
      this.out[this.outHead++] = undefined;
      if (m.event) this.pendingEvents--;
      else this.pendingReplies--;
      if (m.event && m.deadline !== 0 && m.deadline < now) {
        this.stats.expiredEvents++;
        continue;
      }
      this.transport.write(m.bytes);
    }
    if (this.outHead === this.out.length) {
      this.out.length = 0;
      this.outHead = 0;
    } else if (this.outHead > 64 && this.outHead * 2 > this.out.length) {
      this.out.splice(0, this.outHead);
      this.outHead = 0;
    }
    this.expireEvents(now);
    this.updateInputPause();
  }

  /** Drop pending events past their deadline, so a reader that never reads stays bounded in time too. */
  private expireEvents(now: number): void {
    if (this.pendingEvents === 0 || !this.anyExpired(now)) return;
    let w = this.outHead;
    for (let r = this.outHead; r < this.out.length; r++) {
      const m = this.out[r]!;
      if (m.event && m.deadline !== 0 && m.deadline < now) {
        this.pendingEvents--;
        this.stats.expiredEvents++;
        continue;
      }
      this.out[w++] = m;
    }
    this.out.length = w;
  }

  /** Deadlines grow in queue order (now + a fixed timeout), so the first one decides. */
  private anyExpired(now: number): boolean {
    for (let i = this.outHead; i < this.out.length; i++) {
      const m = this.out[i]!;
      if (m.event && m.deadline !== 0) return m.deadline < now;
    }
    return false;
  }

  /** Pause input while too many replies are waiting for the peer to read them. */
  updateInputPause(): void {
    this.setPaused('replies', this.pendingReplies >= this.bounds.replies());
  }

  /** Input is paused while any reason holds (reply back-pressure, the write rate limit). */
  setPaused(reason: 'replies' | 'rate', on: boolean): void {
    const was = this.pauseReasons.size > 0;
    if (on) this.pauseReasons.add(reason);
    else this.pauseReasons.delete(reason);
    const now = this.pauseReasons.size > 0;
    if (this.closed || was === now) return;
    if (now) this.transport.pauseInput();
    else this.transport.resumeInput();
  }

  get isInputPaused(): boolean {
    return this.pauseReasons.size > 0;
  }

  /** Drop everything queued (ring reconnect, close). */
  clearOutput(): void {
    this.out.length = 0;
    this.outHead = 0;
    this.pendingEvents = 0;
    this.pendingReplies = 0;
    this.updateInputPause();
  }

  /** Release resources; the daemon has already dropped watches and transactions. */
  close(reason?: 'proto' | 'ringidx' | 'comm'): void {
    if (this.closed) return;
    this.closed = true;
    this.clearOutput();
    this.transport.close(reason);
    this.untrack();
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
