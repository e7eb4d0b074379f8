/**
 * What the demo compares: one row per figure, each measured through PV and natively (and,
 * once the HVM device model exists, through emulated devices: the `emulated` column is
 * there, empty, so the numbers slot in without changing the report's shape).
 *
 * Names are stable: results are `demo.<figure>.<path>`, comparisons
 * `demo.<figure>.pv_vs_native` (and, once `emulated` samples are added, `.emulated_vs_native`
 * and `.pv_vs_emulated`: the device model's issue only has to measure and `add` them).
 */
import { compare, summarize, type BenchComparison, type BenchResult, type Better } from '../harness.js';

export const PATHS = ['pv', 'native', 'emulated'] as const;
export type IoPath = (typeof PATHS)[number];

export interface FigureDef {
  /** `disk.seqread_1m_mbps`, ... */
  readonly key: string;
  readonly label: string;
  readonly unit: string;
  readonly better: Better;
  /** What the native column measured, in a few words (it is not always the same operation). */
  readonly nativeIs: string;
}

export const FIGURES: readonly FigureDef[] = [
  { key: 'disk.seqread_1m_mbps', label: 'disk sequential read 1 MiB', unit: 'MB/s', better: 'higher', nativeIs: 'pread loop, 1 thread' },
  { key: 'disk.seqwrite_1m_mbps', label: 'disk sequential write 1 MiB', unit: 'MB/s', better: 'higher', nativeIs: 'pwrite loop, 1 thread' },
  { key: 'disk.randread_4k_qd32_iops', label: 'disk random read 4 KiB QD32', unit: 'IOPS', better: 'higher', nativeIs: 'pread loop (QD1)' },
  { key: 'disk.randread_4k_qd1_lat_us', label: 'disk random read 4 KiB QD1 latency', unit: 'µs', better: 'lower', nativeIs: 'pread, mean' },
  { key: 'net.udp_1500_mbps', label: 'network UDP stream 1472 B', unit: 'Mbit/s', better: 'higher', nativeIs: 'loopback UDP socket pair' },
  { key: 'net.rtt_us', label: 'network round trip (ping), median', unit: 'µs', better: 'lower', nativeIs: 'loopback UDP echo' },
  { key: 'cpu.disk_seqread_s_per_gib', label: 'dom0 CPU, disk sequential read', unit: 's/GiB', better: 'lower', nativeIs: 'the reading thread' },
  { key: 'cpu.disk_seqwrite_s_per_gib', label: 'dom0 CPU, disk sequential write', unit: 's/GiB', better: 'lower', nativeIs: 'the writing thread' },
  { key: 'cpu.net_udp_s_per_gib', label: 'dom0 CPU, network UDP stream', unit: 's/GiB', better: 'lower', nativeIs: 'the whole process' },
];

export function figure(key: string): FigureDef {
  const f = FIGURES.find((x) => x.key === key);
  if (f === undefined) throw new Error(`demo: no figure ${key}`);
  return f;
}

/** One row of the comparison table: medians per path, undefined where not measured. */
export interface DemoRow {
  readonly key: string;
  readonly label: string;
  readonly unit: string;
  readonly better: Better;
  readonly pv: number | undefined;
  readonly native: number | undefined;
  /** Always undefined until the emulated devices exist (a later issue). */
  readonly emulated: number | undefined;
  /** pv / native. */
  readonly ratio: number | undefined;
  readonly nativeIs: string;
}

/** Runs of every figure and path, kept only in timed rounds. */
export class DemoSamples {
  private readonly runs = new Map<string, { values: number[]; extras: Record<string, number>[] }>();

  add(key: string, path: IoPath, value: number, extra?: Record<string, number>): void {
    figure(key);
    if (!Number.isFinite(value)) return; // not measurable here (no /proc): left out, shown as "—"
    const name = `demo.${key}.${path}`;
    let r = this.runs.get(name);
    if (r === undefined) this.runs.set(name, (r = { values: [], extras: [] }));
    r.values.push(value);
    if (extra !== undefined) r.extras.push(extra);
  }

  result(key: string, path: IoPath): BenchResult | undefined {
    const f = figure(key);
    const name = `demo.${key}.${path}`;
    const r = this.runs.get(name);
    return r === undefined || r.values.length === 0 ? undefined : summarize(name, f.unit, f.better, r.values, r.extras);
  }

  results(): BenchResult[] {
    return FIGURES.flatMap((f) => PATHS.flatMap((p) => this.result(f.key, p) ?? []));
  }

  /**
   * `pv_vs_native` for every figure with both; once emulated figures exist, also
   * `emulated_vs_native` and `pv_vs_emulated` (the seed's claim: PV drivers beat emulation).
   */
  comparisons(): BenchComparison[] {
    const pairs = [['pv', 'native'], ['emulated', 'native'], ['pv', 'emulated']] as const;
    return FIGURES.flatMap((f) =>
      pairs.flatMap(([a, b]) => {
        const va = this.result(f.key, a);
        const vb = this.result(f.key, b);
        return va === undefined || vb === undefined ? [] : [compare(`demo.${f.key}.${a}_vs_${b}`, va, vb)];
      }),
    );
  }

  rows(): DemoRow[] {
    return FIGURES.map((f) => {
      const pv = this.result(f.key, 'pv')?.median;
      const native = this.result(f.key, 'native')?.median;
      return {
        key: f.key, label: f.label, unit: f.unit, better: f.better, pv, native,
        emulated: this.result(f.key, 'emulated')?.median,
        ratio: pv === undefined || native === undefined || native === 0 ? undefined : pv / native,
        nativeIs: f.nativeIs,
      };
    });
  }
}
