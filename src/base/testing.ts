/**
 * Tests that lean on a Debian tool (qemu-img, xenstore-utils, pyxs, tcpdump) skip with a
 * reason on a developer's machine without it. In CI (`CI` set), where `.ci/run` installs
 * every such tool, they never skip: a missing install step must fail loudly, not hide.
 */
export function skipUnlessInstalled(missing: string | false | undefined): string | false {
  if (!missing) return false;
  return process.env['CI'] ? false : missing;
}

/**
 * Poll `cond` (sync or async) every `everyMs` until it holds or `timeoutMs` has passed;
 * resolves whether it held. The one polling loop of the tests' helpers (they differ only in
 * what a timeout does and how often they look).
 */
export async function pollUntil(cond: () => boolean | Promise<boolean>, timeoutMs = 3000, everyMs = 5): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** As pollUntil, but a timeout throws `timed out waiting for <what>`. */
export async function waitUntil(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 3000, everyMs = 5): Promise<void> {
  if (!(await pollUntil(cond, timeoutMs, everyMs))) throw new Error(`timed out waiting for ${what}`);
}
