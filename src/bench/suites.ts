/**
 * Every benchmark suite `xenpv bench` knows. To add one, add one entry: its name and a
 * loader that imports the module exporting its `BenchSuite` (loaded only when it runs, so a
 * suite's heavy imports cost nothing to the others).
 */
import type { BenchSuite } from './harness.js';

export const suites: Readonly<Record<string, () => Promise<BenchSuite>>> = {
  ring: async () => (await import('./ring.js')).ringSuite,
  block: async () => (await import('./block.js')).blockSuite,
  net: async () => (await import('./net.js')).netSuite,
  xenstore: async () => (await import('./xenstore.js')).xenstoreSuite,
};

export function suiteNames(): string[] {
  return Object.keys(suites);
}
