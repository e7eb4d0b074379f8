/**
 * The dispatch table (C core.c `wire_funcs[]`, oxenstored process.ml): one `do<Op>` per
 * operation with its flags. XS_FLAG_PRIV: only privileged callers (EACCES otherwise);
 * XS_FLAG_NOTID: the header's tx_id is ignored. Ops not in the table get ENOSYS.
 */
import type { XsOpName, XsRequest } from '../protocol/index.js';
import type { Handler, RequestOf } from './context.js';
import { doDirectory, doDirectoryPart, doGetPerms, doMkdir, doRead, doRm, doSetPerms, doWrite } from './ops-data.js';
import {
  doControl,
  doGetDomainPath,
  doGetFeature,
  doGetQuota,
  doIntroduce,
  doIsDomainIntroduced,
  doRelease,
  doResume,
  doSetFeature,
  doSetQuota,
  doSetTarget,
} from './ops-domain.js';
import { doResetWatches, doTransactionEnd, doTransactionStart, doUnwatch, doWatch } from './ops-watch-tx.js';

export interface OpEntry {
  readonly handler: Handler;
  /** Privileged callers only. */
  readonly priv: boolean;
  /** Ignore the transaction id. */
  readonly notid: boolean;
  /** Changes the store (counts against the write rate limit). */
  readonly writes: boolean;
}

type Table = { readonly [K in Exclude<XsOpName, 'watchEvent' | 'error'>]: OpEntry };

function entry<K extends XsRequest['op']>(handler: Handler<RequestOf<K>>, flags: Partial<Omit<OpEntry, 'handler'>> = {}): OpEntry {
  return { handler: handler as Handler, priv: false, notid: false, writes: false, ...flags };
}

export const OPS: Table = {
  control: entry<'control'>(doControl, { priv: true }),
  directory: entry<'directory'>(doDirectory),
  read: entry<'read'>(doRead),
  getPerms: entry<'getPerms'>(doGetPerms),
  watch: entry<'watch'>(doWatch, { notid: true }),
  unwatch: entry<'unwatch'>(doUnwatch, { notid: true }),
  transactionStart: entry<'transactionStart'>(doTransactionStart),
  transactionEnd: entry<'transactionEnd'>(doTransactionEnd),
  introduce: entry<'introduce'>(doIntroduce, { priv: true }),
  release: entry<'release'>(doRelease, { priv: true }),
  getDomainPath: entry<'getDomainPath'>(doGetDomainPath),
  write: entry<'write'>(doWrite, { writes: true }),
  mkdir: entry<'mkdir'>(doMkdir, { writes: true }),
  rm: entry<'rm'>(doRm, { writes: true }),
  setPerms: entry<'setPerms'>(doSetPerms, { writes: true }),
  isDomainIntroduced: entry<'isDomainIntroduced'>(doIsDomainIntroduced, { priv: true }),
  resume: entry<'resume'>(doResume, { priv: true }),
  setTarget: entry<'setTarget'>(doSetTarget, { priv: true }),
  resetWatches: entry<'resetWatches'>(doResetWatches),
  directoryPart: entry<'directoryPart'>(doDirectoryPart),
  // GET_FEATURE is unprivileged for a domain's own features ("allow domU to get own features").
  getFeature: entry<'getFeature'>(doGetFeature),
  setFeature: entry<'setFeature'>(doSetFeature, { priv: true }),
  getQuota: entry<'getQuota'>(doGetQuota, { priv: true }),
  setQuota: entry<'setQuota'>(doSetQuota, { priv: true }),
};

export function lookupOp(name: XsOpName | undefined): OpEntry | undefined {
  if (name === undefined || name === 'watchEvent' || name === 'error') return undefined;
  return OPS[name];
}
