/**
 * xorshift32 (Marsaglia): a seeded stream of u32s, fast and good enough to pick blocks or
 * offsets. Not for anything secret. Seed 0 (which would stay 0) starts from a fixed odd value.
 */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/** The same stream as choices: each call a number in [0, n). */
export function xorshiftBelow(seed: number): (n: number) => number {
  const next = xorshift32(seed);
  return (n) => next() % n;
}
