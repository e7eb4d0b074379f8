/**
 * Test support (not a test): an in-process xenstored and client connections to it as any
 * domain. dom0's connection is privileged; a domU's is an unprivileged connection with that
 * domid, as its ring would be (the daemon's `attach(transport, domid)`), without needing a
 * ring page. Bytes cross asynchronously (a microtask), as they would through a socket.
 */
import type { StoreTransport } from '../hv/platform.js';
import { XsClient } from '../xenstore/client/index.js';
import { Xenstored, type Connection, type Transport } from '../xenstore/server/index.js';

class InProcessTransport implements StoreTransport {
  private dataHandler: ((chunk: Uint8Array) => void) | undefined;
  private readonly closeHandlers: ((reason?: Error) => void)[] = [];
  private conn: Connection | undefined;
  private closed = false;

  constructor(private readonly d: Xenstored) {}

  bind(conn: Connection): void {
    this.conn = conn;
  }

  // ---- client side (StoreTransport) ----
  write(bytes: Uint8Array): void {
    if (this.closed) throw new Error('closed');
    const copy = bytes.slice();
    queueMicrotask(() => {
      if (!this.closed && this.conn !== undefined) this.d.input(this.conn, copy);
    });
  }

  onData(handler: (chunk: Uint8Array) => void): void {
    this.dataHandler = handler;
  }

  onClose(handler: (reason?: Error) => void): void {
    this.closeHandlers.push(handler);
  }

  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.conn !== undefined) this.d.transportClosed(this.conn);
  }

  // ---- the daemon's side (through the facade in connect()) ----
  writable(): boolean {
    return !this.closed;
  }

  pauseInput(): void {}

  resumeInput(): void {}

  close(reason?: string): void {
    if (this.closed) return;
    this.closed = true;
    const err = reason === undefined ? undefined : new Error(`xenstored closed the connection: ${reason}`);
    for (const h of this.closeHandlers) h(err);
  }

  /**
   * Deliver a message from the daemon: in a later turn of the event loop, like a socket (a
   * microtask would let a store ping-pong starve timers).
   */
  deliver(bytes: Uint8Array): void {
    const copy = bytes.slice();
    setImmediate(() => {
      if (!this.closed) this.dataHandler?.(copy);
    });
  }
}

export interface TestStore {
  readonly daemon: Xenstored;
  /** A new client connection as `domid` (0: privileged). */
  connect(domid: number): XsClient;
  /** Close every client opened here, then the daemon. */
  close(): void;
}

export function startTestStore(): TestStore {
  const daemon = new Xenstored();
  const clients: XsClient[] = [];
  return {
    daemon,
    connect(domid: number): XsClient {
      const t = new InProcessTransport(daemon);
      // The daemon calls Transport.write with replies; the client calls StoreTransport.write
      // with requests. One object cannot have both under one name, so the daemon gets a facade.
      const facade: Transport = {
        kind: 'local',
        write: (bytes) => t.deliver(bytes),
        writable: () => t.writable(),
        pauseInput: () => undefined,
        resumeInput: () => undefined,
        close: (reason) => t.close(reason),
      };
      t.bind(daemon.attach(facade, domid));
      const client = new XsClient(t);
      clients.push(client);
      return client;
    },
    close(): void {
      for (const c of clients) c.close();
      daemon.close();
    },
  };
}
