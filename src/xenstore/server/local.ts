/**
 * An in-process connection to the daemon, as the platform's `StoreTransport` (hv/platform.ts):
 * for dom0 code running in the daemon's own process (toolstack, backends on the host thread),
 * which would otherwise need the unix socket. Same wire bytes, same checks, same bounds.
 *
 * Replies are delivered from a microtask, never re-entrantly from inside `write`, so a client
 * sees the same ordering as over a socket.
 */
import type { StoreTransport } from '../../hv/platform.js';
import type { Connection, Transport } from './connection.js';
import type { Xenstored } from './xenstored.js';

class InProcessTransport implements Transport {
  readonly kind = 'local' as const;
  dataHandler: ((chunk: Uint8Array) => void) | undefined;
  readonly closeHandlers: ((reason?: Error) => void)[] = [];
  private readonly outbox: Uint8Array[] = [];
  private scheduled = false;
  closed = false;
  inputPaused = false;

  write(bytes: Uint8Array): void {
    this.outbox.push(bytes);
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => this.deliver());
  }

  private deliver(): void {
    this.scheduled = false;
    for (const b of this.outbox.splice(0)) this.dataHandler?.(b);
  }

  writable(): boolean {
    return !this.closed;
  }

  pauseInput(): void {
    this.inputPaused = true;
  }

  resumeInput(): void {
    this.inputPaused = false;
  }

  close(reason?: string): void {
    if (this.closed) return;
    this.closed = true;
    const err = reason === undefined ? undefined : new Error(`xenstored closed the connection: ${reason}`);
    queueMicrotask(() => {
      for (const h of this.closeHandlers) h(err);
    });
  }
}

/** Open a connection to `d` as `domid` (0: privileged dom0). */
export function connectInProcess(d: Xenstored, domid = 0): StoreTransport {
  const t = new InProcessTransport();
  const conn: Connection = d.attach(t, domid);
  return {
    write: (bytes) => {
      if (t.closed) throw new Error('xenstore connection closed');
      d.input(conn, bytes);
    },
    onData: (h) => {
      t.dataHandler = h;
    },
    onClose: (h) => {
      t.closeHandlers.push(h);
    },
    dispose: () => {
      if (!t.closed) d.transportClosed(conn);
    },
  };
}
