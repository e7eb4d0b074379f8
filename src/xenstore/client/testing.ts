/**
 * A scripted in-memory xenstored for client tests: a `StoreTransport` whose far end is a
 * function. It decides per request what to answer, when, and in which order, so tests can
 * produce what a real daemon rarely does on demand (out-of-order replies, EAGAIN, protocol
 * violations, a dropped connection). Not a store: it keeps no tree.
 */
import type { StoreTransport } from '../../hv/platform.js';
import { FrameParser, XsOp, encodeHeader, strings, type XsMessage } from '../protocol/index.js';

export type Responder = (msg: XsMessage, store: ScriptedStore) => void;

export class ScriptedStore implements StoreTransport {
  private readonly parser = new FrameParser();
  private dataHandler: ((chunk: Uint8Array) => void) | undefined;
  private readonly closeHandlers: ((reason?: Error) => void)[] = [];
  /** Every request the client sent, in order. */
  readonly received: XsMessage[] = [];
  closed = false;
  /** Split every chunk sent to the client at these random points (framing robustness). */
  chunking: ((bytes: Uint8Array) => Uint8Array[]) | undefined;

  constructor(private readonly responder: Responder) {}

  write(bytes: Uint8Array): void {
    if (this.closed) throw new Error('closed');
    for (const msg of this.parser.push(bytes).messages) {
      this.received.push(msg);
      this.responder(msg, this);
    }
  }

  onData(handler: (chunk: Uint8Array) => void): void {
    this.dataHandler = handler;
  }

  onClose(handler: (reason?: Error) => void): void {
    this.closeHandlers.push(handler);
  }

  dispose(): void {
    this.closed = true;
  }

  /** Send raw bytes to the client. */
  sendBytes(bytes: Uint8Array): void {
    if (this.closed) return;
    for (const part of this.chunking?.(bytes) ?? [bytes]) this.dataHandler?.(part);
  }

  send(type: number, reqId: number, txId: number, payload: Uint8Array): void {
    const out = new Uint8Array(16 + payload.length);
    encodeHeader({ type, reqId, txId, len: payload.length }, out);
    out.set(payload, 16);
    this.sendBytes(out);
  }

  reply(req: XsMessage, payload: Uint8Array = strings(['OK'])): void {
    this.send(req.type, req.reqId, req.txId, payload);
  }

  replyError(req: XsMessage, name: string): void {
    this.send(XsOp.error, req.reqId, req.txId, strings([name]));
  }

  event(path: string, token: string): void {
    this.send(XsOp.watchEvent, 0, 0, strings([path, token]));
  }

  /** The far end hangs up. */
  hangUp(reason?: Error): void {
    if (this.closed) return;
    this.closed = true;
    for (const h of this.closeHandlers.splice(0)) h(reason);
  }
}
