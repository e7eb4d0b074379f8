/**
 * The guest's console (Linux hvc_xen's part): writes output into the page's `out` ring and
 * reads input from `in`, signalling the backend after each move.
 *
 * Writing never blocks (an event loop cannot): what does not fit the ring waits in a bounded
 * queue and goes when the backend signals that it consumed output; beyond the queue, bytes
 * are dropped and counted. The backend is hostile too (XSA-391, the 2021 hvc hardening):
 * broken indices mark the console bad (no more reads or writes, the port released), and one
 * event reads at most one ring's worth of input.
 *
 * Console 0 uses the page and the port the domain builder set up (`ConsoleFront.attach` with
 * the guest's own binding of that port); secondary consoles are xenbus devices
 * (`consoleFrontendDriver`: a fresh page granted to the backend, an unbound port, `ring-ref`
 * and `port` published, Initialised).
 */
import { XenbusStateInitialised } from '../../abi/io/xenbus.js';
import { XenpvError, type DomId, type Frame, type GrantRef } from '../../base/index.js';
import type { EvtchnBinding, Platform } from '../../hv/platform.js';
import { ConsoleGuestPage, type ByteRingBroken } from '../../ring/index.js';
import { writeKeys } from '../../xenbus/keys.js';
import type { FrontendContext, FrontendDriver, FrontendInstance } from '../../xenbus/frontend-device.js';
import { DEFAULT_FRONT_QUEUE } from './protocol.js';

export interface ConsoleFrontOptions {
  /** Output bytes held while the ring is full; default 64 KiB. */
  readonly queueBytes?: number;
  readonly onBad?: (reason: string) => void;
}

export interface ConsoleFrontStats {
  written: number;
  dropped: number;
  received: number;
  events: number;
}

const encoder = new TextEncoder();

export class ConsoleFront {
  readonly stats: ConsoleFrontStats = { written: 0, dropped: 0, received: 0, events: 0 };
  private readonly ring: ConsoleGuestPage;
  private readonly queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private readonly listeners: ((bytes: Uint8Array) => void)[] = [];
  private binding: EvtchnBinding | undefined;
  private badReason: string | undefined;
  private closed = false;

  /**
   * Attach to a console page; `bind` binds the port with the handler it is given (console 0:
   * the guest adopts the start_info port; secondary: allocUnbound).
   */
  static attach(page: Uint8Array, bind: (handler: () => void) => EvtchnBinding, options: ConsoleFrontOptions = {}): ConsoleFront {
    let front: ConsoleFront | undefined;
    const binding = bind(() => front?.handleEvent());
    front = new ConsoleFront(page, binding, options);
    return front;
  }

  constructor(page: Uint8Array, binding: EvtchnBinding, private readonly options: ConsoleFrontOptions = {}) {
    this.binding = binding;
    this.ring = new ConsoleGuestPage(page, { onBroken: (b) => this.markBad(b) });
  }

  get bad(): string | undefined {
    return this.badReason;
  }

  /** Our event-channel port (0 once released). */
  get port(): number {
    return this.binding?.port ?? 0;
  }

  /** Output bytes waiting for ring space. */
  get queued(): number {
    return this.queuedBytes;
  }

  /** Input from the console daemon. */
  onData(listener: (bytes: Uint8Array) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Write output; returns the bytes accepted (into the ring or the queue). Never blocks;
   * bytes beyond the queue are dropped and counted.
   */
  write(data: Uint8Array | string): number {
    if (this.closed || this.badReason !== undefined) return 0;
    const bytes = typeof data === 'string' ? encoder.encode(data) : data;
    const max = this.options.queueBytes ?? DEFAULT_FRONT_QUEUE;
    const take = Math.min(bytes.length, max - this.queuedBytes);
    if (take < bytes.length) this.stats.dropped += bytes.length - take;
    if (take <= 0) return 0;
    this.queue.push(bytes.slice(0, take));
    this.queuedBytes += take;
    if (this.flush() > 0) this.binding?.notify();
    return take;
  }

  /** The event handler: flush queued output, deliver input. */
  handleEvent(): void {
    if (this.closed || this.badReason !== undefined) return;
    this.stats.events++;
    let moved = this.flush();
    // One ring's worth per event: a backend that keeps writing gets serviced event by event.
    const input = this.ring.input.read();
    if (this.badReason !== undefined) return;
    if (input.length > 0) {
      moved += input.length;
      this.stats.received += input.length;
    }
    if (moved > 0) this.binding?.notify();
    if (input.length > 0) for (const l of this.listeners) l(input);
  }

  private flush(): number {
    let moved = 0;
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const n = this.ring.output.write(head);
      if (n === 0) break;
      moved += n;
      this.queuedBytes -= n;
      if (n === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(n);
    }
    this.stats.written += moved;
    return moved;
  }

  private markBad(b: ByteRingBroken): void {
    if (this.badReason !== undefined) return;
    this.badReason = `bad ring indices from the backend (prod ${b.prod}, cons ${b.cons}, size ${b.size})`;
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.binding?.dispose();
    this.binding = undefined;
    this.options.onBad?.(this.badReason);
  }

  /** Release the port. The page belongs to whoever provided it. */
  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    this.binding?.dispose();
    this.binding = undefined;
  }
}

/** A secondary console's page and grant, and the console over them. */
interface SecondaryRing {
  readonly frame: Frame;
  readonly ref: GrantRef;
  readonly front: ConsoleFront;
}

export interface ConsoleFrontDriverOptions extends ConsoleFrontOptions {
  /** Called with each new connection's console (a reconnect brings a new one). */
  readonly onConsole?: (front: ConsoleFront, ctx: FrontendContext) => void;
}

/**
 * The xenbus frontend driver for `device/console/<n>`. Grants that the backend still maps
 * at disconnect are kept, never reused, and retried later (reliability.md R8).
 */
export function consoleFrontendDriver(platform: Platform, options: ConsoleFrontDriverOptions = {}): FrontendDriver {
  return {
    async create(ctx: FrontendContext): Promise<FrontendInstance> {
      let ring: SecondaryRing | undefined;
      const stuck: SecondaryRing[] = [];
      const release = (r: SecondaryRing): void => {
        r.front.dispose();
        if (platform.grants.endAccess(r.ref)) platform.memory.freePages([r.frame]);
        else stuck.push(r);
      };
      const retryStuck = (): void => {
        for (const r of stuck.splice(0)) release(r);
      };
      return {
        async initialise() {
          retryStuck();
          ring = openSecondary(platform, ctx.backDomid, options);
          await writeKeys(ctx.client, ctx.frontPath, { 'ring-ref': ring.ref, port: ring.front.port });
          options.onConsole?.(ring.front, ctx);
          return XenbusStateInitialised;
        },
        async connect() {
          ring?.front.handleEvent();
        },
        disconnect() {
          if (ring !== undefined) release(ring);
          ring = undefined;
        },
        remove() {
          retryStuck();
          if (stuck.length > 0) ctx.log(`${ctx.frontPath}: ${stuck.length} console page(s) still mapped by the backend; kept`);
        },
      };
    },
  };
}

function openSecondary(platform: Platform, backDomid: DomId, options: ConsoleFrontOptions): SecondaryRing {
  const [frame] = platform.memory.allocPages(1);
  if (frame === undefined) throw new XenpvError('ENOMEM', 'no page for the console ring');
  const page = platform.memory.page(frame);
  page.fill(0); // nothing of ours in a page we share (XSA-403)
  let ref: GrantRef | undefined;
  try {
    ref = platform.grants.grantAccess(backDomid, frame, false);
    const front = ConsoleFront.attach(page, (h) => platform.events.allocUnbound(backDomid, h), options);
    return { frame, ref, front };
  } catch (err) {
    if (ref !== undefined) platform.grants.endAccess(ref);
    platform.memory.freePages([frame]);
    throw err;
  }
}
