/**
 * The baseline's server: a bare Node unix-socket server in its own thread (the layout of the
 * daemon's thread). It frames requests by the xenstore header's length word, as any
 * length-prefixed protocol must, and answers each with a fixed reply the size of a xenstore
 * READ reply. No parsing beyond that, no store: the cost of the transport and the event loop.
 */
import { createServer, type Socket } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { serve, type EchoJob, type Reply, type Request } from './messages.js';

const HEADER = 16;
const LEN_OFFSET = 12;
/** Larger requests are not ours: the echo closes the connection rather than buffer them. */
const MAX_REQUEST = 4096 + HEADER;

const job = workerData as EchoJob;
const reply = Buffer.alloc(job.replyBytes, 0x61);

function attach(sock: Socket): void {
  let buf: Buffer = Buffer.alloc(0);
  sock.on('data', (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    while (buf.length >= HEADER) {
      const size = HEADER + buf.readUInt32LE(LEN_OFFSET);
      if (size > MAX_REQUEST) return void sock.destroy();
      if (buf.length < size) break;
      buf = buf.subarray(size);
      sock.write(reply);
    }
  });
  sock.on('error', () => sock.destroy());
}

const sockets = new Set<Socket>();
const server = createServer((sock) => {
  sockets.add(sock);
  sock.on('close', () => sockets.delete(sock));
  attach(sock);
});
await new Promise<void>((resolve, reject) => {
  server.once('error', reject);
  server.listen(job.socketPath, () => resolve());
});

async function handle(req: Request): Promise<Reply> {
  if (req.kind !== 'close') throw new Error(`echo worker: unexpected request ${req.kind}`);
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  setImmediate(() => parentPort!.close());
  return { kind: 'ok' };
}

serve(parentPort!, handle);
parentPort!.postMessage({ kind: 'ready' } satisfies Reply);
