/** Helpers for bridge tests and for other engineers' tests: frame builders and recording sinks. */
import type { FrameInfo, PortSink } from './port.js';
import { parseMac } from './mac.js';

export class FakeClock {
  constructor(public nowMs = 0) {}
  readonly now = (): number => this.nowMs;
  advance(ms: number): void {
    this.nowMs += ms;
  }
}

/** Records every delivered frame; `accept` decides whether it has room. */
export class RecordingSink implements PortSink {
  readonly frames: { frame: Uint8Array; info: FrameInfo }[] = [];
  accept = true;
  deliver(frame: Uint8Array, info: FrameInfo): boolean {
    if (!this.accept) return false;
    this.frames.push({ frame, info });
    return true;
  }
}

/** An Ethernet frame dst, src, type and a payload of `payloadLen` bytes of `fill`. */
export function ethFrame(dst: string, src: string, type = 0x0800, payloadLen = 46, fill = 0xab): Uint8Array {
  const f = new Uint8Array(14 + payloadLen).fill(fill);
  f.set(parseMac(dst), 0);
  f.set(parseMac(src), 6);
  f[12] = type >> 8;
  f[13] = type & 0xff;
  return f;
}
