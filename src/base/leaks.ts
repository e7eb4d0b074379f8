/**
 * Live-resource accounting for leak checks (STYLE.md habit 8).
 *
 * Everything a peer or a test could leave behind (grant mappings, bound ports, watches,
 * open transactions, workers, sockets) registers here while alive. Tests call
 * `assertNoLeaks()` after each case; it names what is still open and where it was opened.
 * Counting is per thread: each worker has its own registry.
 */
export type ResourceKind =
  | 'grant-mapping'
  | 'grant-access'
  | 'evtchn-port'
  | 'xs-watch'
  | 'xs-transaction'
  | 'xs-connection'
  | 'worker'
  | 'socket'
  | 'domain';

interface Live {
  kind: ResourceKind;
  what: string;
}

const live = new Map<number, Live>();
let nextId = 1;

/** Register a live resource; call the returned function exactly when it is released. */
export function trackResource(kind: ResourceKind, what: string): () => void {
  const id = nextId++;
  live.set(id, { kind, what });
  return () => {
    live.delete(id);
  };
}

export function liveResources(kind?: ResourceKind): Live[] {
  const all = [...live.values()];
  return kind === undefined ? all : all.filter((r) => r.kind === kind);
}

export function assertNoLeaks(kinds?: ResourceKind[]): void {
  const open = liveResources().filter((r) => kinds === undefined || kinds.includes(r.kind));
  if (open.length > 0) {
    const lines = open.slice(0, 20).map((r) => `  ${r.kind}: ${r.what}`);
    throw new Error(`${open.length} resource(s) leaked:\n${lines.join('\n')}`);
  }
}
