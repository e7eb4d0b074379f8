/**
 * Checks a codec's `encodesEveryByte` claim: encoding the same value over a buffer of 0x00
 * and over a buffer of 0xff must give the same bytes, or some byte was left unwritten.
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
  const req = (v: Req, out: DataView): void => codec.encodeRequest(v, out);
  const rsp = (v: Rsp, out: DataView): void => codec.encodeResponse(v, out);
  return (
    requests.every((r) => same(encodeOver(0, codec.requestSize, req, r), encodeOver(0xff, codec.requestSize, req, r))) &&
    responses.every((r) => same(encodeOver(0, codec.responseSize, rsp, r), encodeOver(0xff, codec.responseSize, rsp, r)))
  );
}
