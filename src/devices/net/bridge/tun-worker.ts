/**
 * The reader of a TAP fd, on its own thread, so that the main event loop never waits for
 * Linux: `poll(fd, POLLIN, 100 ms)` (through koffi, synchronously: this thread has nothing
 * else to do), then non-blocking `read`s until EAGAIN or a batch is full, and the batch
 * goes to the owner in one message (the buffers transferred, not copied).
 *
 * Why a worker and not koffi's asynchronous poll from the main thread: hv/xen saw koffi's
 * async calls corrupt the heap on a real dom0; and libuv's thread pool (fs.read) would park
 * one of its four threads in a read that may never return. The 100 ms poll timeout bounds
 * how long `stop` waits for this thread to notice (every timed wait re-checks its condition).
 *
 * The queue toward the owner is bounded: at most `maxInFlight` frames posted and not yet
 * taken (the owner decrements `inFlight` as it takes them); beyond that frames are read
 * and dropped, counted in `queueFull`, so Linux's own queue never backs up into ours.
 */
import { readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { CTL_IN_FLIGHT, CTL_QUEUE_FULL, CTL_READ, CTL_STOP, loadKoffi, type TunWorkerData, type TunWorkerMessage } from './tun.js';

const POLL_TIMEOUT_MS = 100;
const BATCH = 64;
/** Largest frame a TAP hands out: a 65535-byte IP packet behind a 14-byte Ethernet header (+ VLAN tag). */
const READ_BUF = 65535 + 18;
// <poll.h>
const POLLIN = 0x1;
const POLLERR = 0x8;
const POLLHUP = 0x10;
const POLLNVAL = 0x20;
const EINTR = 4;

type Poll = (fds: Uint8Array, n: number, timeoutMs: number) => number;

function post(msg: TunWorkerMessage, transfer: ArrayBuffer[] = []): void {
  parentPort?.postMessage(msg, transfer);
}

/** Non-blocking reads until EAGAIN or a full batch; the frames that fit the in-flight bound. */
function drain(fd: number, ctl: Int32Array, maxInFlight: number, buf: Uint8Array): Uint8Array[] | string {
  const frames: Uint8Array[] = [];
  while (frames.length < BATCH) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK' || code === 'EINTR') break;
      return `read from the TAP failed: ${(err as Error).message}`;
    }
    if (n <= 0) break;
    Atomics.add(ctl, CTL_READ, 1);
    if (Atomics.load(ctl, CTL_IN_FLIGHT) + frames.length >= maxInFlight) Atomics.add(ctl, CTL_QUEUE_FULL, 1);
    else frames.push(buf.slice(0, n));
  }
  return frames;
}

function run(poll: Poll, errno: () => number, data: TunWorkerData): void {
  const ctl = new Int32Array(data.control);
  const pfd = new Uint8Array(8); // struct pollfd { int fd; short events; short revents; }
  const view = new DataView(pfd.buffer);
  view.setInt32(0, data.fd, true);
  view.setInt16(4, POLLIN, true);
  const buf = new Uint8Array(READ_BUF);
  while (Atomics.load(ctl, CTL_STOP) === 0) {
    view.setInt16(6, 0, true);
    const rc = poll(pfd, 1, POLL_TIMEOUT_MS);
    if (rc < 0 && errno() === EINTR) continue;
    if (rc < 0) return post({ kind: 'error', reason: `poll on the TAP failed with errno ${errno()}` });
    if (rc === 0) continue;
    const revents = view.getInt16(6, true);
    if ((revents & (POLLERR | POLLHUP | POLLNVAL)) !== 0) return post({ kind: 'error', reason: `the TAP fd reported poll events 0x${revents.toString(16)}` });
    const frames = drain(data.fd, ctl, data.maxInFlight, buf);
    if (typeof frames === 'string') return post({ kind: 'error', reason: frames });
    if (frames.length === 0) continue;
    Atomics.add(ctl, CTL_IN_FLIGHT, frames.length);
    post({ kind: 'frames', frames }, frames.map((f) => f.buffer as ArrayBuffer));
  }
}

async function main(): Promise<void> {
  const data = workerData as TunWorkerData;
  const k = await loadKoffi();
  if (!k.ok) return post({ kind: 'error', reason: `in the reader thread: ${k.reason}` });
  const koffi = k.koffi;
  const poll = koffi.load('libc.so.6').func('int poll(void *fds, unsigned long n, int timeout)');
  run((fds, n, t) => poll(fds, n, t) as number, () => koffi.errno(), data);
}

void main();
