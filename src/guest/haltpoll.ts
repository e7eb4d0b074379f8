/**
 * Guest halt polling: before its vCPU blocks for events, the guest kernel polls for them a
 * while, so that an event arriving soon after costs the sender no wake-up (no futex or eventfd
 * write, no cross-core interrupt) and this side no return from sleep. Linux does the same in
 * KVM guests with the cpuidle-haltpoll driver and the haltpoll governor; here it is the idle
 * policy of the vCPU's event loop (evtchn/listener.ts `IdlePoll`).
 *
 * The governor and its parameters are Linux's (Documentation/virt/guest-halt-polling.rst):
 * each vCPU keeps a poll limit, 0 at boot. An idle period that ended after the limit but
 * within `guest_halt_poll_ns` grows it (× `grow`, at least `grow_start`, at most
 * `guest_halt_poll_ns`); one that outlasted `guest_halt_poll_ns` shrinks it (÷ `shrink`, 0 when
 * `shrink` is 0) unless `allow_shrink` is off. So a vCPU that waits microseconds for its
 * disk polls, and one that sleeps for seconds soon stops polling.
 *
 * Off unless the command line says `cpuidle_haltpoll.force=1`: Linux loads the driver by
 * itself only on KVM, and polling burns the vCPU's core while it waits, which pays only where
 * each busy thread has a core (performance.md §2: spinning on an oversubscribed box is harmful).
 */
import type { IdlePoll } from '../evtchn/listener.js';

export interface HaltPollParams {
  /** The most a vCPU polls before blocking, ns. */
  readonly maxNs: number;
  readonly grow: number;
  readonly shrink: number;
  /** Where a limit of 0 grows to, ns. */
  readonly growStartNs: number;
  readonly allowShrink: boolean;
}

/** Linux's defaults. */
export const HALTPOLL_DEFAULTS: HaltPollParams = { maxNs: 200_000, grow: 2, shrink: 2, growStartNs: 50_000, allowShrink: true };

/** The ceiling on guest_halt_poll_ns here: 100 ms of polling is already no longer idle. */
export const MAX_HALT_POLL_NS = 100_000_000;

export class HaltPollGovernor implements IdlePoll {
  private limit = 0;
  /** Idle periods that ended while polling, and those that blocked (cpuidle's state usage). */
  polled = 0;
  halted = 0;

  constructor(readonly params: HaltPollParams = HALTPOLL_DEFAULTS) {}

  get limitNs(): number {
    return this.limit;
  }

  reflect(blockNs: number, polled: boolean): void {
    if (polled) this.polled++;
    else this.halted++;
    const p = this.params;
    if (blockNs > this.limit && blockNs <= p.maxNs) {
      if (p.grow === 0) return;
      this.limit = Math.min(p.maxNs, Math.max(p.growStartNs, this.limit * p.grow));
    } else if (blockNs > p.maxNs && p.allowShrink) {
      this.limit = p.shrink === 0 ? 0 : Math.floor(this.limit / p.shrink);
    }
  }

  /** What Linux's cpuidle sysfs shows as the poll and halt states' usage. */
  describe(): string {
    return `cpuidle: state POLL usage ${this.polled}, state HALT usage ${this.halted}, poll limit ${this.limit} ns`;
  }
}
