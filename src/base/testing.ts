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

/** fast-check's run parameters for a randomized test (see fuzzParameters). */
export interface FuzzParameters {
  readonly numRuns: number;
  readonly includeErrorInReport: true;
  readonly seed?: number;
  readonly path?: string;
  readonly endOnFailure?: boolean;
}

/**
 * A randomized test's run parameters from the environment: `XENPV_FUZZ_RUNS` cases (default
 * `runs`: a few in the suite, thousands in a campaign), and `XENPV_FUZZ_SEED` with
 * `XENPV_FUZZ_PATH` to replay the case a failure reports, without shrinking it again.
 */
export function fuzzParameters(runs: number): FuzzParameters {
  const seed = process.env['XENPV_FUZZ_SEED'];
  const path = process.env['XENPV_FUZZ_PATH'];
  return {
    numRuns: Number(process.env['XENPV_FUZZ_RUNS'] ?? runs),
    includeErrorInReport: true,
    ...(seed === undefined ? {} : { seed: Number(seed) }),
    ...(path === undefined ? {} : { path, endOnFailure: true }),
  };
}

/**
 * Run `fn` with every uncaughtException and unhandledRejection meanwhile collected into the
 * array it is given (instead of ending the test run), so a test can assert none escaped.
 */
export async function collectingEscapes<T>(fn: (escaped: unknown[]) => Promise<T>): Promise<T> {
  const escaped: unknown[] = [];
  const onEscape = (err: unknown): void => void escaped.push(err);
  process.on('uncaughtException', onEscape);
  process.on('unhandledRejection', onEscape);
  try {
    return await fn(escaped);
  } finally {
    process.off('uncaughtException', onEscape);
    process.off('unhandledRejection', onEscape);
  }
}

/**
 * A randomized test as a campaign: `check` runs fast-check with the environment's parameters
 * (fuzzParameters(runs)) while what escapes into the event loop is collected for it
 * (collectingEscapes); afterwards, passed or not, a campaign of more than `reportAbove` cases
 * prints what it did through `report(seconds, params)`.
 */
export async function fuzzCampaign(
  runs: number,
  reportAbove: number,
  check: (params: FuzzParameters, escaped: unknown[]) => Promise<void>,
  report: (seconds: number, params: FuzzParameters) => void,
): Promise<void> {
  const params = fuzzParameters(runs);
  const started = performance.now();
  try {
    await collectingEscapes((escaped) => check(params, escaped));
  } finally {
    if (params.numRuns > reportAbove) report((performance.now() - started) / 1000, params);
  }
}
