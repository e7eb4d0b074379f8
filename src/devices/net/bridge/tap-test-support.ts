/**
 * Test wiring for the TAP uplink (not a test): network namespaces and `ip`, cleaned up on
 * every path. Tests that need them skip with a reason outside CI (not root, no /dev/net/tun,
 * no iproute2 or ping); in CI (.ci/run runs as root and installs them) they must run.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { skipUnlessInstalled } from '../../../base/testing.js';

const run = promisify(execFile);

function missing(): string | undefined {
  if (process.platform !== 'linux') return 'TAP devices need Linux';
  if (process.getuid?.() !== 0) return 'creating TAP devices and network namespaces needs root';
  if (!existsSync('/dev/net/tun')) return 'no /dev/net/tun';
  if (spawnSync('ip', ['-V']).status !== 0) return 'iproute2 (ip) not installed';
  return undefined;
}

/** `skip` option for tests that create TAPs and namespaces. */
export const skipTap = skipUnlessInstalled(missing() ?? false);
/** `skip` option for tests that also run Linux's ping. */
export const skipTapPing = skipUnlessInstalled(missing() ?? (spawnSync('ping', ['-V']).status !== 0 ? 'ping (iputils-ping) not installed' : false));

/** `ip ARGS`; rejects with ip's stderr. */
export async function ip(...args: string[]): Promise<string> {
  return (await run('ip', args, { timeout: 10_000 })).stdout;
}

/** A command inside namespace `ns`, e.g. `inNs(ns, 'ping', '-c', '3', addr)`. */
export async function inNs(ns: string, ...cmd: string[]): Promise<{ stdout: string; code: number }> {
  try {
    const r = await run('ip', ['netns', 'exec', ns, ...cmd], { timeout: 20_000 });
    return { stdout: r.stdout, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; code?: number | string };
    return { stdout: e.stdout ?? '', code: typeof e.code === 'number' ? e.code : -1 };
  }
}

let serial = 0;

/** Names unique to this process and call: a namespace and a TAP (at most 15 characters). */
export function uniqueNames(): { ns: string; tap: string } {
  const id = `${process.pid % 100000}${String.fromCharCode(97 + (serial++ % 26))}`;
  return { ns: `xenpv-test-${id}`, tap: `xpv${id}` };
}

/** Run `fn` with a fresh namespace that is deleted afterwards, whatever happens. */
export async function withNetns(ns: string, fn: () => Promise<void>): Promise<void> {
  await ip('netns', 'add', ns);
  try {
    await fn();
  } finally {
    await ip('netns', 'del', ns).catch(() => undefined);
  }
}

/** Move `tap` into `ns` with `mac` and `cidr`, and bring it up. */
export async function configureInNs(ns: string, tap: string, mac: string, cidr: string): Promise<void> {
  await ip('link', 'set', tap, 'netns', ns);
  await ip('-n', ns, 'link', 'set', tap, 'address', mac);
  await ip('-n', ns, 'addr', 'add', cidr, 'dev', tap);
  await ip('-n', ns, 'link', 'set', tap, 'up');
}

/** Is an interface named `name` present in the initial namespace? */
export function linkExists(name: string): boolean {
  return spawnSync('ip', ['link', 'show', name], { stdio: 'ignore' }).status === 0;
}
