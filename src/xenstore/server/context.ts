/**
 * What a request handler (`do<Op>`) sees: the daemon, the connection and its caller identity,
 * the transaction it runs in (if any), and the change set its writes go to.
 *
 * Handlers return the reply payload or throw `XsError` with the wire error name; the dispatcher
 * turns that into an XS_ERROR reply and discards the request's writes.
 */
import type { XsRequest } from '../protocol/index.js';
import type { ChangeSet } from './changeset.js';
import type { Connection, Transaction } from './connection.js';
import type { Caller } from './domains.js';
import type { Xenstored } from './xenstored.js';

export interface OpContext {
  readonly d: Xenstored;
  readonly conn: Connection;
  readonly caller: Caller;
  readonly tx: Transaction | undefined;
  /** The header's tx_id (echoed in the reply). */
  readonly txId: number;
  readonly cs: ChangeSet;
}

export interface OpReply {
  readonly payload: Uint8Array;
  /** Runs after the reply is queued (WATCH's initial event must follow its OK). */
  readonly after?: () => void;
}

export type Handler<R extends XsRequest = XsRequest> = (ctx: OpContext, req: R) => OpReply;

/** The request form of op K (a union member may cover several ops, e.g. READ and DIRECTORY). */
export type RequestOf<K extends XsRequest['op']> = XsRequest extends infer R
  ? R extends { op: infer O }
    ? K extends O
      ? Omit<R, 'op'> & { readonly op: K }
      : never
    : never
  : never;
