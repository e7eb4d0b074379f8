/**
 * The xenstore client library: requests multiplexed by req_id over any `StoreTransport`,
 * transactions with an EAGAIN retry helper, watches as async iterators.
 */
export { XsClient, type TxRef, type XsClientOptions } from './client.js';
export { XsConnection, type ConnectionOptions } from './connection.js';
export { XsTransaction, withTransaction, type RetryOptions } from './transaction.js';
export { XsWatch, type WatchOptions, type WatchSpec, type XsWatchEvent } from './watch.js';
export { connectSocket, connectXenstored, xenstoredSocketPath, DEFAULT_XENSTORED_RUNDIR } from './socket.js';
