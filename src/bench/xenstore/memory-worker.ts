/**
 * The daemon's memory per 10,000 nodes, in a thread of its own (its own V8 heap, nothing else
 * on it): heap used after a full GC, before and after 10,000 WRITEs through an in-process
 * connection, as dom0 would create them. The client's own objects are gone by the second GC
 * (its requests are answered and dropped), so the difference is the daemon's tree.
 *
 * `gc` is exposed at run time (`v8.setFlagsFromString('--expose-gc')` and a fresh context),
 * since a worker cannot take V8 flags of its own.
 */
import { setFlagsFromString, getHeapStatistics } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort, workerData } from 'node:worker_threads';
import { XsClient } from '../../xenstore/client/index.js';
import { connectInProcess, Xenstored } from '../../xenstore/server/index.js';
import type { MemoryReport, Reply } from './messages.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const nodes = (workerData as { nodes: number }).nodes;

function heapUsed(): number {
  // Twice: the first pass can leave finalizable garbage for the second.
  gc();
  gc();
  return getHeapStatistics().used_heap_size;
}

async function measure(): Promise<MemoryReport> {
  const d = new Xenstored();
  const xs = new XsClient(connectInProcess(d, 0), { label: 'bench memory' });
  const value = new TextEncoder().encode('0123456789abcdef');
  await xs.write('/warm', value); // the first request's one-off allocations (parser, tables) are not per node
  const before = heapUsed();
  const usageBefore = { ...d.db.usageOf(0) }; // a copy: usageOf hands out the live record
  // 100 directories of 100 nodes: the shape of many domains' homes, not one huge directory.
  for (let i = 0; i < nodes; i++) await xs.write(`/mem/d${Math.floor(i / 100)}/n${i % 100}`, value);
  const after = heapUsed();
  const usage = d.db.usageOf(0);
  const names = await xs.directory('/mem/d0');
  if (names.length !== Math.min(100, nodes)) throw new Error(`memory bench: /mem/d0 has ${names.length} children`);
  xs.close();
  d.close();
  return {
    kind: 'memory',
    nodes: usage.nodes - usageBefore.nodes,
    heapBefore: before,
    heapAfter: after,
    accountedBytes: usage.memory - usageBefore.memory,
  };
}

try {
  parentPort!.postMessage(await measure());
} catch (err) {
  parentPort!.postMessage({ kind: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies Reply);
}
