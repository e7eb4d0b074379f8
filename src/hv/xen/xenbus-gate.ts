/**
 * Writes to Linux's /dev/xen/xenbus in an order its driver cannot deadlock on.
 *
 * The driver (drivers/xen/xenbus/xenbus_dev_frontend.c) holds the open file's
 * `msgbuffer_mutex` for the whole of a write(2). Most requests are only queued there and
 * answered later, but XS_WATCH and XS_UNWATCH are done synchronously inside the write:
 * register_xenbus_watch / unregister_xenbus_watch wait for xenstored's reply. That reply is
 * read off the ring by the kernel's xenbus thread, which delivers each reply to an earlier
 * queued request of the same file through xenbus_dev_queue_reply, and that takes
 * `msgbuffer_mutex` too. So a WATCH written while an earlier request of the same file is
 * still unanswered can block the xenbus thread on the writer's mutex while the writer waits
 * for the xenbus thread: the domain's whole store connection stops (seen on Linux 6.1 in a
 * domU: blkfront's `watch` behind a `read` it had not awaited; the writer was in xs_talkv,
 * the xenbus thread in xenbus_dev_queue_reply, every later reply unread on the ring).
 * libxenstore never meets it: it has one request in flight per handle.
 *
 * So a WATCH or UNWATCH waits here until every queued request written before it has had its
 * reply read back from the device, and whatever comes after it waits behind it (order on the
 * wire is kept). Other requests go out at once.
 */
import { decodeXsdSockmsg, XS_UNWATCH, XS_WATCH, XS_WATCH_EVENT, XSD_SOCKMSG } from '../../abi/io/xs_wire.js';
import { XenpvError } from '../../base/index.js';

const HEADER = XSD_SOCKMSG.layouts.x86_64.size;

export class XenbusWriteGate {
  /**
   * Requests written that the driver answers later (through the xenbus thread), whose replies
   * are not read yet: how many per req_id (a reply echoes its request's req_id).
   */
  private readonly unanswered = new Map<number, number>();
  /** Messages held back, in order: the first is a WATCH/UNWATCH waiting for `unanswered` to drain. */
  private readonly held: Uint8Array[] = [];
  /** The header of the frame being read (replies arrive in pieces of any size). */
  private readonly header = new Uint8Array(HEADER);
  private headerHave = 0;
  private bodyLeft = 0;

  constructor(
    /** Hand one whole message to the device (a write(2) that may block for WATCH/UNWATCH). */
    private readonly write: (msg: Uint8Array) => void,
  ) {}

  /** Messages waiting for earlier replies (diagnostics and tests). */
  get waiting(): number {
    return this.held.length;
  }

  /** Requests written whose replies have not been read yet (tests). */
  get outstanding(): number {
    let n = 0;
    for (const c of this.unanswered.values()) n += c;
    return n;
  }

  /** Send one whole message, now or once the requests before it are answered. */
  send(msg: Uint8Array): void {
    if (msg.length < HEADER) throw new XenpvError('EINVAL', `a xenstore message is at least ${HEADER} bytes, not ${msg.length}`);
    this.held.push(msg);
    this.release();
  }

  /** Bytes read from the device: count the replies among them (watch events are not replies). */
  received(bytes: Uint8Array): void {
    let at = 0;
    while (at < bytes.length) {
      if (this.bodyLeft > 0) {
        const n = Math.min(this.bodyLeft, bytes.length - at);
        this.bodyLeft -= n;
        at += n;
        continue;
      }
      const n = Math.min(HEADER - this.headerHave, bytes.length - at);
      this.header.set(bytes.subarray(at, at + n), this.headerHave);
      this.headerHave += n;
      at += n;
      if (this.headerHave < HEADER) break;
      this.headerHave = 0;
      const h = decodeXsdSockmsg(this.header);
      this.bodyLeft = h.len;
      if (h.type !== XS_WATCH_EVENT) this.answered(h.req_id);
    }
    this.release();
  }

  private answered(reqId: number): void {
    const c = this.unanswered.get(reqId);
    if (c === undefined) return; // a WATCH/UNWATCH's own "OK", or a reply we never counted
    if (c > 1) this.unanswered.set(reqId, c - 1);
    else this.unanswered.delete(reqId);
  }

  /** Write held messages in order while the first may go. */
  private release(): void {
    while (this.held.length > 0) {
      const msg = this.held[0]!;
      const h = decodeXsdSockmsg(msg);
      const synchronous = h.type === XS_WATCH || h.type === XS_UNWATCH;
      if (synchronous && this.unanswered.size > 0) return;
      this.held.shift();
      // A failed write throws to whoever sent or read last (the store closes on it); the
      // message was not taken, so it is not counted.
      this.write(msg);
      // The driver answers a WATCH/UNWATCH itself, before write returns; its "OK" is read
      // back like any reply but never waits on the xenbus thread, so it is not counted.
      if (!synchronous) this.unanswered.set(h.req_id, (this.unanswered.get(h.req_id) ?? 0) + 1);
    }
  }
}
