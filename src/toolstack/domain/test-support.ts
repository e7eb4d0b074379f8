/**
 * Test support for disks on a toolstack Host (tests only): a Host with one raw image whose
 * teardown checks that nothing is left, and a guest running `builtin:fio` on that image.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DomainInfo } from '../../hv/sim/hypervisor.js';
import { parseDomainConfig } from '../config/index.js';
import { Host } from '../host/host.js';
import { accounting } from '../host/views.js';
import type { Domain } from './domain.js';
import { waitUntil } from '../../base/testing.js';

/**
 * A Host with `disk.img` (`imageBytes`, sparse) in a fresh folder; after `fn`, no domain, guest
 * frame, dom0 port, maptrack entry or foreign pin may be left. `env` is set for the Host's
 * lifetime (read when backends start) and restored after.
 */
export async function withDiskHost(
  imageBytes: number,
  fn: (host: Host, dir: string, log: string[]) => Promise<void>,
  env: Record<string, string> = {},
): Promise<void> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  const dir = await mkdtemp(join(tmpdir(), 'xenpv-diskhost-'));
  await writeFile(join(dir, 'disk.img'), '');
  await truncate(join(dir, 'disk.img'), imageBytes);
  const log: string[] = [];
  const host = await Host.start({ runDir: join(dir, 'run'), storeSocket: false, maxMachineBytes: 2 ** 28, log: (l) => log.push(l) });
  const base = host.hv.framesInUse;
  try {
    await fn(host, dir, log);
    const a = await accounting(host, base);
    assert.deepEqual([a.domains, a.guestFrames, a.dom0Ports, a.dom0Maptrack, a.foreignPins], [0, 0, 0, 0, 0], 'nothing left mapped, pinned or bound');
  } finally {
    await host.close();
    await rm(dir, { recursive: true, force: true });
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

export function until(cond: () => boolean, what = 'condition', ms = 5000): Promise<void> {
  return waitUntil(cond, what, ms, 20);
}

export interface FioGuest {
  readonly domain: Domain;
  readonly info: DomainInfo;
  readonly console: string[];
  /** fio's JSON line, parsed; undefined when it printed none. */
  readonly fio: Record<string, unknown> | undefined;
}

/**
 * Create a guest running `builtin:fio` with `extra` on `disk.img` in `dir`; resolve when it
 * has stopped, with its shutdown and console lines. The guest is preserved when it stops
 * (on_poweroff/on_crash = "preserve"), so its state, and its disk's backend, can be read
 * without racing the toolstack's destroy; the caller destroys it. `beforeRun` sees the domain
 * created and paused, before its first instruction. `disk`: the xl disk spec (default the raw
 * `disk.img`).
 */
export async function runFioGuest(host: Host, dir: string, name: string, extra: string, beforeRun?: (d: Domain) => void, disk = 'disk.img,raw,xvda,rw'): Promise<FioGuest> {
  const lines: string[] = [];
  let domid = -1;
  const onConsole = (d: number, text: string): void => void (d === domid && lines.push(text));
  host.hv.on('console', onConsole);
  try {
    const cfg = parseDomainConfig(
      `name = "${name}"\nkernel = "builtin:fio"\nextra = "${extra}"\nmemory = 16\ndisk = [ '${disk}' ]\n` +
        `on_poweroff = "preserve"\non_crash = "preserve"\n`,
    );
    const domain = await host.create(cfg, { paused: true, baseDir: dir });
    domid = domain.domid; // before it runs: no console line is missed
    beforeRun?.(domain);
    host.unpause(name);
    const info = await host.hv.waitForShutdown(domid, 30_000);
    const line = lines.find((x) => x.startsWith('{"job":"fio"'));
    return { domain, info, console: lines, fio: line === undefined ? undefined : (JSON.parse(line) as Record<string, unknown>) };
  } finally {
    host.hv.off('console', onConsole);
  }
}
