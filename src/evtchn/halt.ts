/**
 * The halt of an event listener: what a vCPU with nothing to do does on HLT, for a thread
 * whose events come in quick succession.
 *
 * Why: a thread asleep in `Atomics.waitAsync` is woken through V8 and libuv: the waker posts a
 * task to the sleeping isolate, which costs it an eventfd write (`uv_async_send`); the sleeper
 * returns from epoll, reads the eventfd, runs the task, resolves the wait's promise and then a
 * microtask. A thread blocked in a synchronous `Atomics.wait` is woken by a futex wake alone.
 * In the `bench block` guest, epoll and the switch back cost ~25 % of its CPU.
 *
 * So while events keep coming soon after each other, the listener, once idle, lets its event
 * loop run one turn (the promise continuations of the last dispatch, due timers, I/O and
 * MessagePort messages) and then blocks on its wake word for at most `HALT_MS`; a message or a
 * timer therefore waits at most that long. The halt is adaptive, like KVM's halt_poll_ns: it
 * is armed only after `ARM_AFTER` sleeps in a row each ended by an event within `HALT_MS`, and
 * one halt that runs out disarms it, so an idle thread sleeps in `waitAsync` and is not woken
 * at all (every wait is timed and re-checks: performance.md 2.7).
 *
 * `deliverLoop` is the listener's event-loop delivery (SimEventOps.startAsync) with the halt in
 * it, kept here so that it can be tested on a plain shared word.
 *
 * `XENPV_HALT=0|1` (read once, when this module loads in a thread) turns it off or on for the
 * listeners that ask for it (`SimEventOps.startAsync({ halt: true })`): dom0's disk threads
 * and the fio guest. `bench block` randread 4 KiB QD32, alternating pairs, halt off → on:
 * with the disk threads halting, 5 of 6 pairs faster, mean IOPS ×1.12, guest 2.17 → 1.99 µs
 * and backend 2.58 → 2.49 µs of CPU per op; with the guest's vCPU halting as well, ×1.26,
 * guest 1.99 → 1.70 and backend 2.40 → 2.10. 1 MiB reads: no change beyond the noise. But
 * the guest kernel's vCPU does not ask for it: on the net path (`bench net` udp, the sender
 * and receiver guests halting) it cost 4-7 % more CPU per packet and 5-7 % less throughput
 * over two runs of alternating pairs; probably (not verified) because a sender woken at once
 * by each tx response sends smaller bursts (netfront asks for an event on the next response,
 * where blkfront moderates its completions).
 */
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';

/** Longest one halt blocks its thread's event loop, ms. */
export const HALT_MS = 1;
/** Sleeps in a row ended by an event within HALT_MS before the halt is armed. */
export const ARM_AFTER = 4;

/** Whether listeners that ask for a halt get one: `XENPV_HALT`, default on. */
export const HALT_ENABLED = parseSwitch(process.env.XENPV_HALT, true);

function parseSwitch(v: string | undefined, dflt: boolean): boolean {
  if (v === '1') return true;
  if (v === '0') return false;
  return dflt;
}

/**
 * The thread has work that this halt would hold up: an immediate (a backend's serve pass that
 * used up its budget yields through one; it ran after ours and before every halt that ran out,
 * in `bench block`'s disk thread) or a libuv request (a file operation's completion). Cheap
 * enough per halt (~0.25 µs); timers and handles (MessagePorts) are left out: they only ever
 * wait HALT_MS.
 */
function otherWorkPending(): boolean {
  for (const r of process.getActiveResourcesInfo()) {
    if (r === 'Immediate' || r.includes('Req') || r === 'WriteWrap') return true;
  }
  return false;
}

export class Halt {
  private streak = 0;
  private armed_ = false;
  private sleptAt = 0;
  /** Halts that ended by an event / ran out (for tests and profiling). */
  hits = 0;
  misses = 0;

  constructor(
    readonly haltMs = HALT_MS,
    readonly armAfter = ARM_AFTER,
  ) {}

  /** Halt at the next idle moment rather than sleep in `waitAsync`. */
  get armed(): boolean {
    return this.armed_;
  }

  /** Just before a `waitAsync` sleep. */
  sleeping(): void {
    this.sleptAt = performance.now();
  }

  /** Just after a `waitAsync` sleep ended: a short sleep counts toward arming. */
  woke(): void {
    const short = performance.now() - this.sleptAt < this.haltMs;
    this.streak = short ? this.streak + 1 : 0;
    if (this.streak >= this.armAfter) this.armed_ = true;
  }

  /**
   * Let the event loop run one turn, then block until `words[index]` moves past `seen` or
   * `haltMs` runs out. True: go and deliver (or `wanted()` turned false meanwhile: the caller
   * re-checks it). False: it ran out, the halt is disarmed, sleep in `waitAsync`.
   */
  async halt(words: Int32Array, index: number, seen: number, wanted: () => boolean): Promise<boolean> {
    await nextTurn();
    // Work of this thread's own still queued (an immediate queued after ours, a libuv request
    // in flight): blocking would hold it up until the halt ran out. Go round again instead.
    if (!wanted() || otherWorkPending()) return true;
    const r = Atomics.wait(words, index, seen, this.haltMs);
    if (r !== 'timed-out') {
      this.hits++;
      return true;
    }
    this.misses++;
    this.armed_ = false;
    this.streak = 0;
    return false;
  }
}

/** What the delivery loop needs from its listener. */
export interface DeliverHooks {
  /** Deliver whatever is pending (the upcall); must not throw. */
  deliver(): void;
  /** The loop is still wanted (not stopped, not replaced by a newer one). */
  wanted(): boolean;
  /** The wake-word value an untimed `waitAsync` now waits past, or undefined when it ended. */
  waiting(past: number | undefined): void;
  /** The halt to use when idle, if any (read each time: it may be asked for later). */
  readonly halt?: Halt | undefined;
}

/**
 * Deliver events from the event loop until `wanted()` turns false: deliver, then halt (when
 * armed) or sleep in `waitAsync` until `words[index]` moves. The waitAsync is untimed: the
 * caller bounds it (a watchdog fed by `waiting`, listener.ts), and ends it by a notify.
 */
export async function deliverLoop(words: Int32Array, index: number, hooks: DeliverHooks): Promise<void> {
  // Never call handlers from inside the call that started the loop.
  await Promise.resolve();
  while (hooks.wanted()) {
    const seen = Atomics.load(words, index);
    hooks.deliver();
    if (!hooks.wanted()) break;
    const halt = hooks.halt;
    if (halt?.armed === true && (await halt.halt(words, index, seen, hooks.wanted))) continue;
    hooks.waiting(seen);
    halt?.sleeping();
    const r = Atomics.waitAsync(words, index, seen);
    if (r.async) await r.value;
    halt?.woke();
    hooks.waiting(undefined);
  }
}
