/**
 * Per-direction I/O statistics for fio: operations, bytes, and a latency histogram good
 * enough for percentiles without keeping every sample (a 10 s run at 1 M IOPS would be 80 MB
 * of samples). Log-linear buckets, as HdrHistogram does: values below 64 ns are exact, above
 * that each power of two is split into 32 buckets, so a percentile is within ~3 % of the
 * truth; the mean is exact (a running sum).
 */
const SUB = 32;
const LINEAR = 2 * SUB;
/** Enough buckets for values up to 2^31 ns (2.1 s); longer latencies land in the last. */
const BUCKETS = LINEAR + (31 - 5) * SUB;

function bucketOf(ns: number): number {
  const v = Math.max(0, Math.min(0x7fffffff, Math.round(ns)));
  if (v < LINEAR) return v;
  const msb = 31 - Math.clz32(v);
  const shift = msb - 5;
  return Math.min(BUCKETS - 1, (shift + 1) * SUB + ((v >>> shift) - SUB));
}

/** The middle of a bucket's range, in ns. */
function valueOf(bucket: number): number {
  if (bucket < LINEAR) return bucket;
  const shift = Math.floor(bucket / SUB) - 1;
  const low = (SUB + (bucket % SUB)) * 2 ** shift;
  return low + 2 ** shift / 2;
}

export interface DirectionReport {
  readonly ios: number;
  readonly bytes: number;
  readonly iops: number;
  /** 1e6 bytes per second. */
  readonly mbps: number;
  readonly lat_us: { readonly mean: number; readonly p50: number; readonly p99: number; readonly max: number };
}

export class IoStats {
  ios = 0;
  bytes = 0;
  private sumNs = 0;
  private maxNs = 0;
  private readonly hist = new Float64Array(BUCKETS);

  record(bytes: number, latencyNs: number): void {
    this.ios++;
    this.bytes += bytes;
    this.sumNs += latencyNs;
    if (latencyNs > this.maxNs) this.maxNs = latencyNs;
    this.hist[bucketOf(latencyNs)]!++;
  }

  /** The latency (ns) below which fraction `q` of operations completed. */
  percentileNs(q: number): number {
    if (this.ios === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.ios));
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.hist[b]!;
      if (seen >= rank) return Math.min(valueOf(b), this.maxNs);
    }
    return this.maxNs;
  }

  report(elapsedNs: number): DirectionReport {
    const s = elapsedNs / 1e9;
    const us = (ns: number): number => Math.round(ns / 10) / 100;
    return {
      ios: this.ios,
      bytes: this.bytes,
      iops: s > 0 ? Math.round((this.ios / s) * 10) / 10 : 0,
      mbps: s > 0 ? Math.round((this.bytes / s / 1e6) * 100) / 100 : 0,
      lat_us: {
        mean: us(this.ios === 0 ? 0 : this.sumNs / this.ios),
        p50: us(this.percentileNs(0.5)),
        p99: us(this.percentileNs(0.99)),
        max: us(this.maxNs),
      },
    };
  }
}
