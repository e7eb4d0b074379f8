/**
 * A store connection for a guest worker, carried over a MessagePort.
 *
 * Why this exists: a guest booted by the toolstack reaches the store through its ring page
 * (guest/store-ring.ts), which needs the host to INTRODUCE the domain with a ring mapper. The
 * fio guest worker of tests and `xenpv bench block` runs without the toolstack (dom0, one
 * guest, blkback and blkfront set up directly, as the blk tests do), so it gets this instead:
 * the worker end is a `StoreTransport` for XsClient; the host end attaches to the in-process
 * Xenstored as an unprivileged connection of the guest's domid, exactly as the ring would
 * (`daemon.attach(transport, domid)`), so permissions and quotas are the guest's.
 * Only control-plane traffic (handshake, watches) crosses it; the data path is the ring.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Disposable } from '../../base/index.js';
import type { StoreTransport } from '../../hv/platform.js';
import type { Connection, Transport, Xenstored } from '../../xenstore/server/index.js';

type BridgeMessage = { readonly type: 'data'; readonly bytes: Uint8Array } | { readonly type: 'close'; readonly reason?: string };

/** The guest worker's end. */
export class PortStoreTransport implements StoreTransport {
  private readonly closeHandlers: ((reason?: Error) => void)[] = [];
  private closed = false;

  constructor(private readonly port: MessagePort) {
    port.on('close', () => this.closedBy(undefined));
  }

  write(bytes: Uint8Array): void {
    if (this.closed) throw new Error('store connection closed');
    const copy = bytes.slice();
    this.port.postMessage({ type: 'data', bytes: copy } satisfies BridgeMessage, [copy.buffer]);
  }

  onData(handler: (chunk: Uint8Array) => void): void {
    this.port.on('message', (m: BridgeMessage) => {
      if (m.type === 'data') handler(m.bytes);
      else this.closedBy(new Error(`xenstored closed the connection${m.reason === undefined ? '' : `: ${m.reason}`}`));
    });
  }

  onClose(handler: (reason?: Error) => void): void {
    this.closeHandlers.push(handler);
  }

  private closedBy(reason: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    for (const h of this.closeHandlers) h(reason);
    this.port.close();
  }

  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    this.port.close();
  }
}

/** The host's end: the port's peer becomes a connection of `domid` to `daemon`. */
export function bridgeStore(daemon: Xenstored, port: MessagePort, domid: number): Disposable {
  let conn: Connection | undefined;
  let open = true;
  const transport: Transport = {
    kind: 'local',
    write: (bytes) => {
      if (!open) return;
      const copy = bytes.slice();
      port.postMessage({ type: 'data', bytes: copy } satisfies BridgeMessage, [copy.buffer]);
    },
    writable: () => open,
    pauseInput: () => undefined,
    resumeInput: () => undefined,
    close: (reason) => {
      if (!open) return;
      open = false;
      port.postMessage({ type: 'close', ...(reason !== undefined ? { reason } : {}) } satisfies BridgeMessage);
      port.close();
    },
  };
  conn = daemon.attach(transport, domid);
  port.on('message', (m: BridgeMessage) => {
    if (open && m.type === 'data' && conn !== undefined) daemon.input(conn, m.bytes);
  });
  const gone = (): void => {
    if (conn === undefined) return;
    const c = conn;
    conn = undefined;
    open = false;
    daemon.transportClosed(c);
  };
  port.on('close', gone);
  return {
    dispose: () => {
      gone();
      port.close();
    },
  };
}
