/**
 * dom0's side of the store inside the host: the daemon with guest rings mapped through dom0's
 * platform (INTRODUCE → map the guest's GNTTAB_RESERVED_XENSTORE page, bind its store port),
 * and in-process client connections for the toolstack and the backends (dom0 talks to its
 * own xenstored without a socket, as oxenstored's in-dom0 clients may).
 */
import { GNTTAB_RESERVED_XENSTORE } from '../../abi/grant_table.js';
import type { DomId, EvtchnPort, GrantRef } from '../../base/index.js';
import type { StoreTransport } from '../../hv/platform.js';
import type { SimPlatform } from '../../hv/sim/platform.js';
import { XsClient } from '../../xenstore/client/index.js';
import type { Connection, RingEndpoint, RingMapper, Transport, Xenstored } from '../../xenstore/server/index.js';

/** INTRODUCE's mapper: the guest's store page through its reserved grant, and its port. */
export function ringMapperFor(dom0: SimPlatform): RingMapper {
  return (domid, _gfn, port): RingEndpoint => {
    const mapping = dom0.grants.map(domid as DomId, [GNTTAB_RESERVED_XENSTORE as GrantRef], true);
    let handler: (() => void) | undefined;
    let binding;
    try {
      binding = dom0.events.bindInterdomain(domid as DomId, port as EvtchnPort, () => handler?.());
    } catch (err) {
      mapping.dispose();
      throw err;
    }
    const b = binding;
    return {
      page: mapping.pages[0]!,
      notify: () => b.notify(),
      onEvent: (h) => void (handler = h),
      dispose: () => {
        b.dispose();
        mapping.dispose();
      },
    };
  };
}

/** A client connection to `daemon` as `domid`, bytes crossing in a later turn (like a socket). */
export function connectLocal(daemon: Xenstored, domid: number): XsClient {
  let onData: ((chunk: Uint8Array) => void) | undefined;
  const closers: ((reason?: Error) => void)[] = [];
  let closed = false;
  let conn: Connection | undefined;
  const server: Transport = {
    kind: 'local',
    write: (bytes) => {
      const copy = bytes.slice();
      setImmediate(() => {
        if (!closed) onData?.(copy);
      });
    },
    writable: () => !closed,
    pauseInput: () => undefined,
    resumeInput: () => undefined,
    close: (reason) => {
      if (closed) return;
      closed = true;
      for (const h of closers) h(reason === undefined ? undefined : new Error(`xenstored closed the connection: ${reason}`));
    },
  };
  const client: StoreTransport = {
    write: (bytes) => {
      if (closed) throw new Error('store connection closed');
      const copy = bytes.slice();
      queueMicrotask(() => {
        if (!closed && conn !== undefined) daemon.input(conn, copy);
      });
    },
    onData: (h) => void (onData = h),
    onClose: (h) => void closers.push(h),
    dispose: () => {
      if (closed) return;
      closed = true;
      if (conn !== undefined) daemon.transportClosed(conn);
    },
  };
  conn = daemon.attach(server, domid);
  return new XsClient(client);
}
