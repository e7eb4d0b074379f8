/**
 * Checks a codec's `encodesEveryByte` claim: encoding the same value over a buffer of 0x00
 * and over a buffer of 0xff must give the same bytes, or some byte was left unwritten. With
 * `requestLength`, a request's claim is on its own bytes, and the rest of the slot must be
 * left as it was (that is what spares the lines it spans).
 */
import type { RingCodec } from './sring.js';

function encodeOver<T>(fill: number, size: number, encode: (v: T, out: DataView) => void, value: T): Uint8Array {
  const bytes = new Uint8Array(size).fill(fill);
  encode(value, new DataView(bytes.buffer));
  return bytes;
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** True when every sample request and response overwrites all of its bytes. */
export function encodesEveryByte<Req, Rsp>(
  codec: RingCodec<Req, Rsp>,
  requests: readonly Req[],
  responses: readonly Rsp[],
): boolean {
  const rsp = (v: Rsp, out: DataView): void => codec.encodeResponse(v, out);
  return requests.every((r) => requestEncodedWhole(codec, r)) && responses.every((r) => same(encodeOver(0, codec.responseSize, rsp, r), encodeOver(0xff, codec.responseSize, rsp, r)));
}

/** Every byte of the request's length written, and (with `requestLength`) none of the slot past it. */
function requestEncodedWhole<Req, Rsp>(codec: RingCodec<Req, Rsp>, r: Req): boolean {
  const encode = (v: Req, out: DataView): void => codec.encodeRequest(v, out);
  const zeros = encodeOver(0, codec.requestSize, encode, r);
  const ones = encodeOver(0xff, codec.requestSize, encode, r);
  const n = codec.requestLength?.(new DataView(zeros.buffer)) ?? codec.requestSize;
  return same(zeros.subarray(0, n), ones.subarray(0, n)) && zeros.subarray(n).every((b) => b === 0) && ones.subarray(n).every((b) => b === 0xff);
}
