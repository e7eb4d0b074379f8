/**
 * The xenstore daemon (`xenpv xenstored`, and inside `xenpv host`). `startXenstored` runs one
 * in-process: a unix socket for tools and dom0, guest rings through `ringMapper`, optional
 * on-disk state.
 */
import { JournalPersistence } from './persist.js';
import { defaultSocketPath, listenSocket, type SocketListener } from './socket.js';
import { Xenstored, type XenstoredOptions } from './xenstored.js';

export { Xenstored, type XenstoredOptions, type Persistence } from './xenstored.js';
export { DEFAULT_LIMITS, makeLimits, QUOTA_NAMES, type Limits } from './limits.js';
export { RingTransport, type RingEndpoint, type RingMapper } from './ring.js';
export { defaultSocketPath, listenSocket, socketAnswers } from './socket.js';
export { JournalPersistence } from './persist.js';
export { SERVER_FEATURES } from './features.js';
export type { Connection, Transport } from './connection.js';

export interface StartOptions extends XenstoredOptions {
  /** Unix socket path; default `defaultSocketPath()`. `null`: no socket (in-process use only). */
  readonly socketPath?: string | null;
  /** `--state FILE`: restore from and persist to this file. */
  readonly stateFile?: string;
}

export interface RunningXenstored {
  readonly daemon: Xenstored;
  /** The socket path, if listening. */
  readonly socketPath: string | undefined;
  close(): Promise<void>;
}

export async function startXenstored(opts: StartOptions = {}): Promise<RunningXenstored> {
  const daemon = new Xenstored(opts);
  if (opts.stateFile !== undefined) JournalPersistence.open(opts.stateFile, daemon);
  let listener: SocketListener | undefined;
  const socketPath = opts.socketPath === null ? undefined : (opts.socketPath ?? defaultSocketPath());
  try {
    if (socketPath !== undefined) listener = await listenSocket(daemon, socketPath);
  } catch (e) {
    daemon.close();
    throw e;
  }
  return {
    daemon,
    socketPath,
    async close() {
      await listener?.close();
      daemon.close();
    },
  };
}
export { platformRingMapper } from './platform-ring.js';
export { connectInProcess } from './local.js';
export { dom0RingMapper, reconcileDomains, serveDom0, type Dom0Options, type DomainChanges, type DomainState, type LocalRing } from './dom0.js';
