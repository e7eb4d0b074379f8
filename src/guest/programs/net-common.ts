/**
 * What the network programs share: `key=value` arguments from `extra`, bringing eth0 up
 * (NetFront on `device/vif/<vif>`, a NetStack over it) and a loop that runs the stack's timers.
 *
 * The logic takes a `NetProgramEnv` (platform, store client, console) rather than the kernel's
 * context, so tests run it in-process against the test store; the builtin entry points
 * open the store with `platform.openStore()`.
 */
import { XenpvError, type Disposable } from '../../base/index.js';
import type { Platform } from '../../hv/platform.js';
import { NetFront, type NetFrontFeatures } from '../../devices/net/front.js';
import { taskClock } from '../../devices/net/bridge/clock.js';
import { OffloadInfos } from '../../devices/net/bridge/port.js';
import { XsClient } from '../../xenstore/client/index.js';
import { kernelNic } from '../devices.js';
import { NetStack, type RxInfo } from '../net/stack.js';
import type { GuestContext } from '../program.js';

export interface NetProgramEnv {
  readonly platform: Platform;
  readonly store: XsClient;
  readonly domid: number;
  readonly argv: readonly string[];
  /** One console line. */
  log(line: string): void;
  sleep(ms: number): Promise<void>;
  /** False once the domain is going away. */
  running(): Promise<boolean>;
}

/** Longest an idle program sleeps before it looks at the domain's state (shutdown) again. */
const IDLE_MAX_MS = 50;

/** `key=value` words of `extra`; bare words are ignored. */
export function options(argv: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const a of argv) {
    const i = a.indexOf('=');
    if (i > 0) m.set(a.slice(0, i), a.slice(i + 1));
  }
  return m;
}

export function numberOption(o: Map<string, string>, key: string, dflt: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = o.get(key);
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) throw new XenpvError('EINVAL', `bad ${key}=${raw} (${min}..${max})`, { key });
  return n;
}

export function requiredOption(o: Map<string, string>, key: string): string {
  const v = o.get(key);
  if (v === undefined || v === '') throw new XenpvError('EINVAL', `missing ${key}=`, { key });
  return v;
}

export interface Eth0 extends Disposable {
  readonly front: NetFront;
  readonly stack: NetStack;
  /**
   * Run the stack's timers until `done()` or `timeoutMs`: `done` is checked again whenever a
   * frame arrives, a stack timer or `nextAt()` (a program's own deadline, ms on
   * performance.now) is due, or IDLE_MAX_MS passed; no polling in between.
   * `pureDone`: `done` has no side effects and is cheap, so it is called for each frame that
   * arrives and the loop wakes only once it holds, not for every batch of frames (a stream
   * receiver: one wake-up instead of one per 64 datagrams).
   */
  until(done: () => boolean, timeoutMs: number, nextAt?: () => number | undefined, pureDone?: boolean): Promise<boolean>;
  close(): Promise<void>;
}

/** Bring up `device/vif/<vif>` with `ip=A.B.C.D/prefix` (default 10.0.0.<domid>/24). */
export async function bringUpEth0(env: NetProgramEnv, o: Map<string, string>): Promise<Eth0> {
  const vif = numberOption(o, 'vif', 0, 0, 0xffff);
  const [addr, prefix] = (o.get('ip') ?? `10.0.0.${env.domid}/24`).split('/');
  const features: Partial<NetFrontFeatures> = { queues: numberOption(o, 'queues', 1, 1, 16) };
  // The kernel's NetFront when it probed this vif (guest/devices.ts); else one of our own.
  const shared = kernelNic(vif);
  const front = shared ?? new NetFront({ platform: env.platform, store: env.store, frontendPath: `/local/domain/${env.domid}/device/vif/${vif}`, features });
  if (shared === undefined) await front.start();
  await front.waitUp(numberOption(o, 'uptimeout', 10_000, 1));
  const memory = env.platform.memory;
  const stack = new NetStack({
    mac: front.mac, address: addr!, prefix: Number(prefix ?? 24), mtu: front.mtu, clock: () => performance.now(), arpClock: taskClock,
    ...(o.has('gw') ? { gateway: o.get('gw')! } : {}),
    txChecksumOffload: o.get('csum') === 'offload',
    send: (f, info) => void front.transmit(f, info),
    sendCopies: true, // NetFront.transmit copies into a granted page or its backlog
    txBuffer: (len) => front.txBuffer(len), // or a datagram is built in the granted page itself
    copy: (dst, at, src) => memory.copy(dst, at, src), // a memmove between guest pages (sim)
  });
  // The stack copies what it keeps (an onDatagram reader reads each payload in place),
  // so netfront may hand frames over in one reused buffer. One RxInfo per offload state.
  // Every field the stack reads per frame present, not left out: with fillBlank and owned
  // missing, those loads went through V8's generic load IC (bench net: ~2% of the receiver).
  const rxInfo = new OffloadInfos<RxInfo>((csumBlank, dataValidated) => ({ csumBlank, dataValidated, fillBlank: false, owned: false, transient: true }));
  let wakeUp: (() => void) | undefined;
  /** until's `done` when it is pure: a frame wakes the loop only once it holds. */
  let wakeIf: (() => boolean) | undefined;
  front.onReceive = (f, info) => {
    stack.receive(f, rxInfo.get(info.csumBlank, info.dataValidated));
    if (wakeUp !== undefined && (wakeIf === undefined || wakeIf())) wakeUp();
  };
  front.rxTransient = true;
  /** Sleep up to `ms`, or until the next frame arrives. */
  const idle = (ms: number): Promise<void> => new Promise((resolve) => {
    const timer = setTimeout(wake, ms);
    function wake(): void {
      clearTimeout(timer);
      wakeUp = undefined;
      resolve();
    }
    wakeUp = wake;
  });
  const until = async (done: () => boolean, timeoutMs: number, nextAt?: () => number | undefined, pureDone = false): Promise<boolean> => {
    const end = performance.now() + timeoutMs;
    wakeIf = pureDone ? done : undefined;
    try {
      while (!done() && performance.now() < end && (await env.running())) {
        stack.tick();
        const now = performance.now();
        const at = Math.min(end, now + IDLE_MAX_MS, stack.nextTimer() ?? Infinity, nextAt?.() ?? Infinity);
        await idle(Math.max(0, at - now));
      }
      return done();
    } finally {
      wakeIf = undefined;
    }
  };
  const close = async (): Promise<void> => {
    await front.flush(1000); // what was sent reaches the backend before the rings go
    if (shared !== undefined) {
      front.onReceive = undefined; // the kernel's NIC outlives this program: only let go of it
      front.rxTransient = false;
      return;
    }
    await front.dispose();
  };
  return { front, stack, until, close, dispose: () => void close() };
}

/** The builtin entry: open the store through the platform, then run `body`. */
export async function withNetEnv(ctx: GuestContext, body: (env: NetProgramEnv) => Promise<void>): Promise<void> {
  const store = new XsClient(await ctx.platform.openStore());
  try {
    await body({
      platform: ctx.platform, store, domid: ctx.domid, argv: ctx.argv,
      log: (line) => ctx.log(line), sleep: (ms) => ctx.sleep(ms), running: () => ctx.running(),
    });
  } finally {
    store.close();
  }
}
