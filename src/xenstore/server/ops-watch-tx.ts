/**
 * WATCH, UNWATCH, RESET_WATCHES (watch.c) and TRANSACTION_START / TRANSACTION_END
 * (transaction.c).
 */
import { domainPath, isRelative, OK_PAYLOAD, strings, XsError } from '../protocol/index.js';
import { trackResource } from '../../base/index.js';
import { resolvePath } from './access.js';
import { ChangeSet } from './changeset.js';
import { Connection, type Transaction, type Watch } from './connection.js';
import type { Handler, OpReply, RequestOf } from './context.js';
import { XENSTORE_SERVER_FEATURE_WATCHDEPTH } from './features.js';
import { eventMessage, isSpecialPath } from './watches.js';

const ok: OpReply = { payload: OK_PAYLOAD };

export const doWatch: Handler<RequestOf<'watch'>> = (ctx, req) => {
  const { d, conn, caller } = ctx;
  const relative = isRelative(req.path);
  const path = resolvePath(ctx, req.path, true);
  if (req.depth !== undefined && (d.featuresOf(conn) & XENSTORE_SERVER_FEATURE_WATCHDEPTH) === 0) {
    throw new XsError('EINVAL', 'watch depth needs XENSTORE_SERVER_FEATURE_WATCHDEPTH');
  }
  const key = Connection.watchKey(path, req.token);
  if (conn.watches.has(key)) throw new XsError('EEXIST');
  if (!caller.privileged) {
    if (d.watchUsage(caller.domid).count + 1 > d.quota(caller.domid, 'watches')) throw new XsError('ENOSPC', 'watches');
    if (d.memoryOf(caller.domid) + path.length + req.token.length > d.quota(caller.domid, 'memory')) {
      throw new XsError('ENOSPC', 'memory');
    }
  }
  const w: Watch = {
    path,
    token: req.token,
    prefixLen: relative ? domainPath(conn.domid).length + 1 : 0,
    ...(req.depth === undefined ? {} : { depth: req.depth }),
  };
  d.addWatch(conn, key, w);
  // "When a watch is first set up it is triggered once straight away, with <path> equal to <wpath>."
  const after = (): void => {
    const msg = eventMessage(w, w.path);
    if (msg !== undefined) conn.queueEvent(msg, isSpecialPath(w.path), d.eventDeadline(caller));
  };
  return { payload: OK_PAYLOAD, after };
};

export const doUnwatch: Handler<RequestOf<'unwatch'>> = (ctx, req) => {
  const path = resolvePath(ctx, req.path, true);
  if (!ctx.d.removeWatch(ctx.conn, Connection.watchKey(path, req.token))) throw new XsError('ENOENT');
  return ok;
};

/** "Reset all watches and transactions of the caller." */
export const doResetWatches: Handler<RequestOf<'resetWatches'>> = (ctx) => {
  ctx.d.dropWatchesAndTransactions(ctx.conn);
  return ok;
};

/** "It is not legal to send non-0 tx_id in TRANSACTION_START": a nested start is EBUSY. */
export const doTransactionStart: Handler<RequestOf<'transactionStart'>> = (ctx) => {
  const { d, conn, caller } = ctx;
  if (ctx.tx !== undefined) throw new XsError('EBUSY');
  if (!caller.privileged && d.transactionCount(caller.domid) + 1 > d.quota(caller.domid, 'transactions')) {
    throw new XsError('ENOSPC', 'transactions');
  }
  const id = allocateTxId(conn);
  const limit = caller.privileged ? Infinity : d.quota(caller.domid, 'transactionNodes');
  const release = trackResource('xs-transaction', `conn #${conn.id} tx ${id}`);
  const tx: Transaction = { id, cs: new ChangeSet(d.db.store, true, limit), release };
  conn.transactions.set(id, tx);
  return { payload: strings([String(id)]) };
};

/** A free non-zero u32 id: the next one after the last handed out, skipping ids in use. */
function allocateTxId(conn: Connection): number {
  for (;;) {
    const id = conn.nextTxId;
    conn.nextTxId = conn.nextTxId === 0xffffffff ? 1 : conn.nextTxId + 1;
    if (!conn.transactions.has(id)) return id;
  }
}

/**
 * TRANSACTION_END T|F. The transaction ends whatever the outcome; a commit fails with EAGAIN if
 * a node it accessed changed meanwhile, and is applied all at once otherwise.
 */
export const doTransactionEnd: Handler<RequestOf<'transactionEnd'>> = (ctx, req) => {
  const tx = ctx.tx;
  if (tx === undefined) throw new XsError('ENOENT');
  ctx.conn.transactions.delete(tx.id);
  tx.release();
  if (req.commit) ctx.d.commitTransaction(ctx.conn, ctx.caller, tx.cs);
  return ok;
};
