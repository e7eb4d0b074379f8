/**
 * Streaming frame parser: feed it byte chunks split anywhere, get whole messages back.
 *
 * Bounded: it holds at most one partial header (16 B) plus one payload (≤ the limit, 4096 by
 * XENSTORE_PAYLOAD_MAX). A header announcing more is a framing error: "If a client exceeds the
 * limit, its xenstored connection will be immediately killed" (docs/misc/xenstore.txt). After
 * an error the parser is poisoned: it consumes and ignores everything until `reset()`, so a
 * bad stream is never re-parsed (reliability.md H14). It never throws on input.
 */
import { HEADER_SIZE, PAYLOAD_MAX } from './ops.js';
import { decodeHeader, type XsHeader, type XsMessage } from './header.js';

export interface FrameError {
  readonly kind: 'payload-too-large';
  readonly header: XsHeader;
  readonly message: string;
}

export interface FrameResult {
  /** Complete messages, in stream order. */
  readonly messages: XsMessage[];
  /** Set once, on the push that found the violation; messages before it are still returned. */
  readonly error?: FrameError;
}

export class FrameParser {
  private readonly head = new Uint8Array(HEADER_SIZE);
  private headUsed = 0;
  private header: XsHeader | undefined;
  private body: Uint8Array | undefined;
  private bodyUsed = 0;
  private failure: FrameError | undefined;

  constructor(readonly maxPayload = PAYLOAD_MAX) {}

  /** The error that poisoned this parser, if any. */
  get failed(): FrameError | undefined {
    return this.failure;
  }

  /** Bytes of an incomplete message held right now (0 at a message boundary). */
  get pending(): number {
    return this.headUsed + this.bodyUsed;
  }

  /**
   * Bytes still needed to complete the current header or payload: a reader that must stop at
   * message boundaries (a ring with a bounded number of outstanding requests) reads this many.
   */
  get needed(): number {
    if (this.header === undefined) return HEADER_SIZE - this.headUsed;
    return (this.body?.length ?? 0) - this.bodyUsed;
  }

  /** Drop any partial message and any error: the next byte starts a new header (ring reconnect). */
  reset(): void {
    this.headUsed = 0;
    this.header = undefined;
    this.body = undefined;
    this.bodyUsed = 0;
    this.failure = undefined;
  }

  push(chunk: Uint8Array): FrameResult {
    const messages: XsMessage[] = [];
    if (this.failure !== undefined) return { messages };
    let off = 0;
    while (off < chunk.length) {
      if (this.header === undefined) {
        off = this.fillHeader(chunk, off);
        if (this.header === undefined) break;
        const err = this.checkHeader(this.header);
        if (err !== undefined) {
          this.failure = err;
          return { messages, error: err };
        }
      }
      off = this.fillBody(chunk, off);
      const done = this.takeMessage();
      if (done !== undefined) messages.push(done);
    }
    // A zero-length payload completes as soon as its header does.
    const last = this.takeMessage();
    if (last !== undefined) messages.push(last);
    return { messages };
  }

  private fillHeader(chunk: Uint8Array, off: number): number {
    const n = Math.min(HEADER_SIZE - this.headUsed, chunk.length - off);
    this.head.set(chunk.subarray(off, off + n), this.headUsed);
    this.headUsed += n;
    if (this.headUsed === HEADER_SIZE) this.header = decodeHeader(this.head);
    return off + n;
  }

  private checkHeader(h: XsHeader): FrameError | undefined {
    if (h.len <= this.maxPayload) {
      this.body = new Uint8Array(h.len);
      this.bodyUsed = 0;
      return undefined;
    }
    return {
      kind: 'payload-too-large',
      header: h,
      message: `payload length ${h.len} exceeds XENSTORE_PAYLOAD_MAX ${this.maxPayload}`,
    };
  }

  private fillBody(chunk: Uint8Array, off: number): number {
    const body = this.body;
    if (body === undefined) return off;
    const n = Math.min(body.length - this.bodyUsed, chunk.length - off);
    body.set(chunk.subarray(off, off + n), this.bodyUsed);
    this.bodyUsed += n;
    return off + n;
  }

  private takeMessage(): XsMessage | undefined {
    const h = this.header;
    const body = this.body;
    if (h === undefined || body === undefined || this.bodyUsed !== body.length) return undefined;
    this.header = undefined;
    this.body = undefined;
    this.headUsed = 0;
    this.bodyUsed = 0;
    return { type: h.type, reqId: h.reqId, txId: h.txId, payload: body };
  }
}
