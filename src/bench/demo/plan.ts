/**
 * How long the demo measures. Full: about a minute on the reference machine (2 shared cores);
 * quick: a few seconds per part, for the test suite (keeps the code working, measures nothing
 * reliable). Each PV figure and its native baseline are measured in the same round, rounds
 * alternate which goes first (harness.ts), and the figure is the median over rounds.
 */
export interface DemoPlan {
  readonly rounds: number;
  /** The image the disk guest gets as xvda (created sparse, then filled), MiB. */
  readonly imageMiB: number;
  /** Seconds per disk job (fio `runtime` in the guest, the native loop's duration). */
  readonly diskSeconds: number;
  /** fio's ramp_time before each PV disk job: the fresh guest's and disk thread's code compiles uncounted. */
  readonly diskRampSeconds: number;
  /** Milliseconds of UDP stream per round. */
  readonly udpMs: number;
  /** Echo round trips per round. */
  readonly pings: number;
  /**
   * Milliseconds between pings: ping keeps a fixed schedule, so this must exceed the round
   * trip for one echo to be in flight at a time; on a loaded 2-core machine a guest's reply can
   * wait several scheduler slices (ms), hence 10.
   */
  readonly pingIntervalMs: number;
}

export const FULL_PLAN: DemoPlan = { rounds: 3, imageMiB: 256, diskSeconds: 1.5, diskRampSeconds: 0.5, udpMs: 2000, pings: 100, pingIntervalMs: 10 };
export const QUICK_PLAN: DemoPlan = { rounds: 1, imageMiB: 32, diskSeconds: 0.25, diskRampSeconds: 0, udpMs: 300, pings: 20, pingIntervalMs: 10 };
