/** Test helpers for GSO: TCP super-frames over IPv4/IPv6 and an independent checksum check. */
/** RFC 1071 the slow way over a list of bytes, folding at every step: an independent reference. */
export function onesComplementOk(bytes: ArrayLike<number>): boolean {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    sum += bytes[i]! * 256 + (bytes[i + 1] ?? 0);
    if (sum > 0xffff) sum -= 0xffff;
  }
  return sum === 0xffff;
}

export interface Spec {
  v6: boolean;
  ipOptions: number; // 32-bit words of IPv4 options
  tcpOptions: number; // 32-bit words of TCP options
  seq: number;
  ipId: number;
  flags: number;
  payload: Uint8Array;
}

export const be16 = (f: Uint8Array, at: number): number => (f[at]! << 8) | f[at + 1]!;
export const be32 = (f: Uint8Array, at: number): number => ((f[at]! << 24) | (f[at + 1]! << 16) | (f[at + 2]! << 8) | f[at + 3]!) >>> 0;

export function put16(f: Uint8Array, at: number, v: number): void {
  f[at] = (v >> 8) & 0xff;
  f[at + 1] = v & 0xff;
}

/** A TCP super-frame as a GSO sender leaves it: checksum field holding garbage. */
export function superFrame(s: Spec): Uint8Array {
  const ipLen = s.v6 ? 40 : 20 + s.ipOptions * 4;
  const tcpLen = 20 + s.tcpOptions * 4;
  const f = new Uint8Array(14 + ipLen + tcpLen + s.payload.length);
  f.set([0x00, 0x16, 0x3e, 0, 0, 2, 0x00, 0x16, 0x3e, 0, 0, 1], 0);
  const ip = 14;
  if (s.v6) {
    put16(f, 12, 0x86dd);
    f[ip] = 0x60;
    put16(f, ip + 4, tcpLen + s.payload.length);
    f[ip + 6] = 6;
    f[ip + 7] = 64;
    for (let i = 0; i < 32; i++) f[ip + 8 + i] = (i * 37 + 1) & 0xff;
  } else {
    put16(f, 12, 0x0800);
    f[ip] = 0x40 | (ipLen / 4);
    put16(f, ip + 2, ipLen + tcpLen + s.payload.length);
    put16(f, ip + 4, s.ipId);
    f[ip + 6] = 0x40; // DF
    f[ip + 8] = 64;
    f[ip + 9] = 6;
    f.set([10, 0, 0, 1, 10, 0, 0, 2], ip + 12);
    for (let i = 20; i < ipLen; i++) f[ip + i] = 1; // NOP options
  }
  const t = ip + ipLen;
  put16(f, t, 40000);
  put16(f, t + 2, 80);
  new DataView(f.buffer).setUint32(t + 4, s.seq);
  f[t + 12] = (tcpLen / 4) << 4;
  f[t + 13] = s.flags;
  put16(f, t + 14, 0xffff);
  put16(f, t + 16, 0xdead);
  for (let i = 20; i < tcpLen; i++) f[t + i] = 1;
  f.set(s.payload, t + tcpLen);
  return f;
}

export function pseudoHeader(seg: Uint8Array, v6: boolean, l4Len: number): number[] {
  if (v6) return [...seg.subarray(22, 54), 0, 0, l4Len >> 8, l4Len & 0xff, 0, 0, 0, 6];
  return [...seg.subarray(26, 34), 0, 6, l4Len >> 8, l4Len & 0xff];
}

