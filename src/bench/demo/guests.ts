/**
 * The demo's guests: the bundled `examples/pv-guest.cfg` (a PV guest with xvda and one vif on
 * xenbr0), created by the toolstack with `key=value` overrides — what a user would type as
 *
 *   xenpv create examples/pv-guest.cfg 'kernel="builtin:fio"' 'extra="rw=read bs=1M ..."'
 *
 * Each guest runs one built-in program that prints one JSON line on its console and powers
 * off (the config's `on_poweroff = "destroy"`); once its line is in, the demo destroys it. A guest that
 * crashes, or stays silent past its deadline, fails the demo with its console in the message.
 */
import { fileURLToPath } from 'node:url';
import { XenpvError } from '../../base/index.js';
import type { DomainInfo } from '../../hv/sim/hypervisor.js';
import { loadDomainConfig, type Domain, type Host } from '../../toolstack/index.js';

/** Compiled to dist/bench/demo/: the repository (or package) root is three levels up. */
export const EXAMPLE_CONFIG = fileURLToPath(new URL('../../../examples/pv-guest.cfg', import.meta.url));
/** The image the example config names (`disk = [ 'pv-guest.img,raw,xvda,rw' ]`), beside `baseDir`. */
export const EXAMPLE_IMAGE = 'pv-guest.img';

export interface GuestSpec {
  readonly name: string;
  readonly program: 'fio' | 'udp-send' | 'udp-recv' | 'ping';
  readonly extra: string;
  /** Drop the example's disk (network guests need no image). */
  readonly noDisk?: boolean;
  /** xl's `cpus=` for its vCPU (a CPU list); absent: unpinned. */
  readonly cpus?: string;
}

export interface RunningGuest {
  readonly domain: Domain;
  readonly domid: number;
  /** Resolves with the first console line that parses as JSON with `key`, and when it came (performance.now()). */
  json<T>(key: string, timeoutMs: number): Promise<{ value: T; at: number }>;
  /** Its console lines so far. */
  consoleLines(): string[];
  /** Resolves with the first console line matching `re`. */
  line(re: RegExp, timeoutMs: number): Promise<string>;
  /**
   * Destroy it (xl destroy) unless its poweroff already did. Called once its result is in:
   * an orderly poweroff spends about a second closing its devices, which the demo need not wait for.
   */
  finish(): Promise<void>;
}

/** What the demo's parts share: the host, where the image is, what was measured, the step line. */
export interface DemoContext {
  readonly host: Host;
  /** Where the example's relative image path is resolved (the demo's temp dir). */
  readonly baseDir: string;
  /** `xenpv create` line of each guest name started (the last round's), for the report. */
  readonly commands: Map<string, string>;
  step(what: string): void;
}

/** The guest as a `xenpv create` command line. */
export function createCommand(spec: GuestSpec): string {
  return ['xenpv create examples/pv-guest.cfg', ...overridesFor(spec).map((o) => `'${o}'`)].join(' ');
}

export function overridesFor(spec: GuestSpec): string[] {
  const o = [`name="${spec.name}"`, `kernel="builtin:${spec.program}"`, `extra="${spec.extra}"`];
  if (spec.noDisk === true) o.push('disk=[]');
  if (spec.cpus !== undefined) o.push(`cpus="${spec.cpus}"`);
  return o;
}

/** Create `spec` from the example config (paused), wire its console, unpause it. */
export async function startGuest(ctx: DemoContext, spec: GuestSpec): Promise<RunningGuest> {
  ctx.commands.set(spec.name, createCommand(spec));
  const cfg = await loadDomainConfig(EXAMPLE_CONFIG, { overrides: overridesFor(spec) });
  const domain = await ctx.host.create(cfg, { paused: true, baseDir: ctx.baseDir });
  const guest = new DemoGuest(ctx.host, domain, spec.name);
  ctx.host.unpause(domain.domid);
  return guest;
}

/** Console lines kept per guest at most: each program prints a handful. */
const MAX_LINES = 1000;

class DemoGuest implements RunningGuest {
  readonly domid: number;
  private readonly lines: { text: string; at: number }[] = [];
  private ended: DomainInfo | undefined;
  private wake: (() => void) | undefined;

  private readonly onConsole = (d: number, text: string): void => {
    if (d !== this.domid) return;
    if (this.lines.length < MAX_LINES) this.lines.push({ text, at: performance.now() });
    this.wake?.();
  };

  private readonly onShutdown = (d: number, info: DomainInfo | undefined): void => {
    if (d !== this.domid || info?.state !== 'shutdown') return;
    this.ended = info;
    this.wake?.();
  };

  constructor(
    private readonly host: Host,
    readonly domain: Domain,
    private readonly name: string,
  ) {
    this.domid = domain.domid;
    host.hv.on('console', this.onConsole);
    host.hv.on('shutdown', this.onShutdown);
  }

  consoleLines(): string[] {
    return this.lines.map((l) => l.text);
  }

  json<T>(key: string, timeoutMs: number): Promise<{ value: T; at: number }> {
    return this.first(`"${key}" line`, (t) => parseJsonLine(t, key) as T | undefined, timeoutMs);
  }

  async line(re: RegExp, timeoutMs: number): Promise<string> {
    return (await this.first(String(re), (t) => (re.test(t) ? t : undefined), timeoutMs)).value;
  }

  async finish(): Promise<void> {
    this.host.hv.off('console', this.onConsole);
    this.host.hv.off('shutdown', this.onShutdown);
    if (this.host.domains.get(this.domid) !== this.domain) return; // its poweroff already destroyed it
    await this.host.destroy(this.domid).catch((err: unknown) => {
      // ESRCH: on_poweroff="destroy" got there first, between the check and the call.
      if (!(err instanceof XenpvError && err.code === 'ESRCH')) throw err;
    });
  }

  /** The first console line `pick` accepts; fails if the guest stops otherwise than by poweroff, or on timeout. */
  private async first<T>(what: string, pick: (text: string) => T | undefined, timeoutMs: number): Promise<{ value: T; at: number }> {
    const end = performance.now() + timeoutMs;
    for (;;) {
      for (const l of this.lines) {
        const v = pick(l.text);
        if (v !== undefined) return { value: v, at: l.at };
      }
      const e = this.ended;
      if (e !== undefined && e.shutdownReason !== 'poweroff') {
        throw new XenpvError('EIO', `guest ${this.name} ${e.shutdownReason ?? 'stopped'}: ${e.message ?? ''}\n${this.consoleLines().join('\n')}`);
      }
      if (performance.now() > end) {
        throw new XenpvError('ETIMEDOUT', `guest ${this.name} printed no ${what} within ${timeoutMs} ms\n${this.consoleLines().join('\n')}`);
      }
      await this.nextEvent();
    }
  }

  /** Until the next console line or shutdown, at most 50 ms. */
  private async nextEvent(): Promise<void> {
    await new Promise<void>((r) => {
      const t = setTimeout(r, 50);
      this.wake = () => {
        clearTimeout(t);
        r();
      };
    });
    this.wake = undefined;
  }
}

function parseJsonLine(text: string, key: string): unknown {
  const t = text.trim();
  if (!t.startsWith('{')) return undefined;
  try {
    const v = JSON.parse(t) as Record<string, unknown>;
    if (key === 'job' ? v['job'] === 'fio' : Object.hasOwn(v, key)) return key === 'job' ? v : v[key];
  } catch {
    return undefined;
  }
  return undefined;
}
