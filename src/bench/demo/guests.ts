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
  return o;
}

/** Create `spec` from the example config (paused), wire its console, unpause it. */
export async function startGuest(ctx: DemoContext, spec: GuestSpec): Promise<RunningGuest> {
  const { host, baseDir } = ctx;
  ctx.commands.set(spec.name, createCommand(spec));
  const cfg = await loadDomainConfig(EXAMPLE_CONFIG, { overrides: overridesFor(spec) });
  const domain = await host.create(cfg, { paused: true, baseDir });
  const domid = domain.domid;
  const lines: { text: string; at: number }[] = [];
  let wake: (() => void) | undefined;
  let ended: DomainInfo | undefined;
  const onConsole = (d: number, text: string): void => {
    if (d !== domid) return;
    if (lines.length < 1000) lines.push({ text, at: performance.now() });
    wake?.();
  };
  const onShutdown = (d: number, info: DomainInfo | undefined): void => {
    if (d !== domid || info?.state !== 'shutdown') return;
    ended = info;
    wake?.();
  };
  host.hv.on('console', onConsole);
  host.hv.on('shutdown', onShutdown);
  const detach = (): void => {
    host.hv.off('console', onConsole);
    host.hv.off('shutdown', onShutdown);
  };
  const consoleText = (): string => lines.map((l) => l.text).join('\n');

  /** The first console line `pick` accepts; fails if the guest stops otherwise than by poweroff, or on timeout. */
  const first = async <T>(what: string, pick: (text: string) => T | undefined, timeoutMs: number): Promise<{ value: T; at: number }> => {
    const end = performance.now() + timeoutMs;
    for (;;) {
      for (const l of lines) {
        const v = pick(l.text);
        if (v !== undefined) return { value: v, at: l.at };
      }
      if (ended !== undefined && ended.shutdownReason !== 'poweroff') {
        throw new XenpvError('EIO', `guest ${spec.name} ${ended.shutdownReason ?? 'stopped'}: ${ended.message ?? ''}\n${consoleText()}`);
      }
      if (performance.now() > end) throw new XenpvError('ETIMEDOUT', `guest ${spec.name} printed no ${what} within ${timeoutMs} ms\n${consoleText()}`);
      // Woken by the next console line or shutdown; the timeout bounds the wait.
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
      wake = undefined;
    }
  };
  const json = <T>(key: string, timeoutMs: number) => first(`"${key}" line`, (t) => parseJsonLine(t, key) as T | undefined, timeoutMs);
  const line = async (re: RegExp, timeoutMs: number) => (await first(String(re), (t) => (re.test(t) ? t : undefined), timeoutMs)).value;

  const finish = async (): Promise<void> => {
    detach();
    if (host.domains.get(domid) !== domain) return; // its poweroff already destroyed it
    await host.destroy(domid).catch((err: unknown) => {
      // ESRCH: on_poweroff="destroy" got there first, between the check and the call.
      if (!(err instanceof XenpvError && err.code === 'ESRCH')) throw err;
    });
  };

  host.unpause(domid);
  return { domain, domid, json, line, finish, consoleLines: () => lines.map((l) => l.text) };
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
