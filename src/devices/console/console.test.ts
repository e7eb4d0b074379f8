/**
 * Console 0 front <-> back through two sim domains' grants and event channels: random-sized
 * writes both ways, output much larger than the ring, the bounded buffer and its discard
 * marker, back-pressure, the log file, and a hostile guest (indices beyond the ring, an
 * event storm). Every test ends with the hypervisor's leak checks (withHypervisor).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XENCONS_CONNECTION_OFFSET, XENCONS_INTERFACE } from '../../abi/io/console.js';
import { withHypervisor } from '../../hv/sim/testing.js';
import type { ConsoleBack } from './back.js';
import { connectBack, eventually, guestWithConsole, prng, randomBytes } from './test-support.js';

const OFF = XENCONS_INTERFACE.layouts.x86_64.fields;

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Read an attached stream into `sink` until it ends. */
function collect(back: ConsoleBack, sink: Uint8Array[]): ReturnType<ConsoleBack['attach']> {
  const s = back.attach();
  s.on('data', (b: Buffer) => sink.push(new Uint8Array(b)));
  return s;
}

test('random-sized writes both ways arrive intact and in order; 96 KiB of output through a 2 KiB ring', () =>
  withHypervisor(async (hv) => {
    const g = guestWithConsole(hv);
    const back = connectBack(hv, g);
    assert.equal(g.page[XENCONS_CONNECTION_OFFSET], 0, 'the daemon marks the console connected');
    const out: Uint8Array[] = [];
    const stream = collect(back, out);
    const next = prng(7);
    const sent: Uint8Array[] = [];
    let total = 0;
    while (total < 96 * 1024) {
      const chunk = randomBytes(next, 1 + (next() % 5000));
      // Respect the front's bounded queue: an event loop writer waits instead of dropping.
      await eventually(() => g.front.queued + chunk.length <= 65536, 'queue room');
      assert.equal(g.front.write(chunk), chunk.length);
      sent.push(chunk);
      total += chunk.length;
    }
    await eventually(() => out.reduce((n, c) => n + c.length, 0) >= total, 'all output');
    assert.deepEqual(concat(out), concat(sent));
    assert.equal(g.front.stats.dropped, 0);
    // Input: random pieces written to the attached stream reach the guest's listener.
    const input: Uint8Array[] = [];
    g.front.onData((b) => input.push(b));
    const typed: Uint8Array[] = [];
    for (let i = 0; i < 40; i++) {
      const piece = randomBytes(next, 1 + (next() % 700));
      typed.push(piece);
      stream.write(piece);
    }
    const want = concat(typed);
    await eventually(() => input.reduce((n, c) => n + c.length, 0) >= want.length, 'all input');
    assert.deepEqual(concat(input), want);
    assert.equal(back.bad, undefined);
    stream.destroy();
    await back.close();
    g.front.dispose();
    g.guest.dispose();
  }));

test('the output buffer is bounded: the oldest bytes go, the reader sees a marker with the count, then the newest', () =>
  withHypervisor(async (hv) => {
    const g = guestWithConsole(hv);
    const back = connectBack(hv, g, { capacity: 4096 });
    const data = randomBytes(prng(3), 20000);
    for (let at = 0; at < data.length; at += 1000) {
      g.front.write(data.subarray(at, at + 1000));
      await eventually(() => g.front.queued === 0, 'flushed');
    }
    await eventually(() => back.stats.bytesOut === data.length, 'all drained');
    assert.equal(back.buffer.size, 4096);
    assert.equal(back.buffer.discarded, 20000 - 4096);
    const out: Uint8Array[] = [];
    const s = collect(back, out);
    await eventually(() => out.length >= 2, 'marker and data');
    assert.equal(new TextDecoder().decode(out[0]), `\r\n[xenpv console: ${20000 - 4096} bytes of output discarded]\r\n`);
    assert.deepEqual(concat(out.slice(1)), data.subarray(20000 - 4096));
    s.destroy();
    await back.close();
    g.front.dispose();
    g.guest.dispose();
  }));

test('overflow=keep: a full buffer stalls the ring (back-pressure to the guest) and nothing is lost', () =>
  withHypervisor(async (hv) => {
    const g = guestWithConsole(hv);
    const back = connectBack(hv, g, { capacity: 4096, overflow: 'keep' });
    const data = randomBytes(prng(11), 12000);
    assert.equal(g.front.write(data), data.length);
    await eventually(() => back.buffer.size === 4096, 'buffer full');
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(back.buffer.size, 4096);
    assert.ok(g.front.queued > 0, 'the guest holds what does not fit');
    assert.equal(back.buffer.discarded, 0);
    const out: Uint8Array[] = [];
    const s = collect(back, out);
    await eventually(() => out.reduce((n, c) => n + c.length, 0) === data.length, 'everything');
    assert.deepEqual(concat(out), data);
    s.destroy();
    await back.close();
    g.front.dispose();
    g.guest.dispose();
  }));

test('the log file gets every byte, with xenconsoled-style timestamps at line starts', () =>
  withHypervisor(async (hv) => {
    const dir = mkdtempSync(join(tmpdir(), 'xenpv-console-'));
    try {
      const g = guestWithConsole(hv);
      const back = connectBack(hv, g, { capacity: 4096, logFile: join(dir, 'guest-test.log'), timestamps: true });
      const parts = ['boot line one\r\nline two\n\rpartial', ' line\n'];
      for (const p of parts) g.front.write(p);
      const total = parts.join('').length;
      await eventually(() => back.stats.bytesOut === total, 'drained');
      await back.close();
      const text = readFileSync(join(dir, 'guest-test.log'), 'utf8');
      const ts = '\\[\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}\\] ';
      assert.match(text, new RegExp(`^${ts}boot line one\\r\\n${ts}line two\\n${ts}partial line\\n$`));
      g.front.dispose();
      g.guest.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }));

test('a hostile guest with out_prod beyond the ring is cut off: bad, port and page released, no crash', () =>
  withHypervisor(async (hv) => {
    const g = guestWithConsole(hv);
    let badReason: string | undefined;
    const back = connectBack(hv, g, { onBad: (r) => (badReason = r) });
    g.front.write('fine so far');
    await eventually(() => back.stats.bytesOut === 11, 'first output');
    const w = new DataView(g.page.buffer, g.page.byteOffset);
    const cons = w.getUint32(OFF.out_cons, true);
    w.setUint32(OFF.out_prod, (cons + 2049) >>> 0, true); // one byte more than the ring holds
    g.kick();
    await eventually(() => back.bad !== undefined, 'marked bad');
    assert.match(badReason!, /bad out\/in ring indices/);
    assert.equal(back.stats.bytesOut, 11, 'nothing read past the violation');
    assert.equal(back.writeInput(new Uint8Array([1])), 0, 'a bad console takes no input');
    await back.close();
    g.front.dispose();
    g.guest.dispose();
  }));

test('an event storm is rate-limited to the allowance per period, then cut off as a storm', () =>
  withHypervisor(async (hv) => {
    const g = guestWithConsole(hv);
    const back = connectBack(hv, g, { ratePeriodMs: 20, rateAllowance: 5, stormPeriods: 4 });
    try {
      const t0 = Date.now();
      // Empty notifications: the guest signals without writing anything.
      while (back.bad === undefined && Date.now() - t0 < 3000) {
        g.kick();
        await new Promise((r) => setImmediate(r));
      }
      const elapsed = Date.now() - t0;
      assert.match(back.bad ?? '', /event storm/);
      const { services, periods, rateLimited, events } = back.stats;
      // Each period at least 20 ms long, however late the timers ran on a busy machine.
      assert.ok(periods <= Math.floor(elapsed / 20) + 1, `${periods} periods in ${elapsed} ms`);
      // Per period: the allowance, and one look when a limited period ends; one at connect.
      assert.ok(services <= periods * 5 + rateLimited + 1, `services ${services} in ${periods} periods, ${rateLimited} limited`);
      assert.ok(events > services, 'events beyond the allowance were not serviced');
      assert.ok(rateLimited >= 4);
    } finally {
      await back.close();
      g.front.dispose();
      g.guest.dispose();
    }
  }));

test('a hostile backend: in_prod beyond the ring marks the guest\'s console bad, without throwing', () =>
  withHypervisor(async (hv) => {
    let reason: string | undefined;
    const g = guestWithConsole(hv, { onBad: (r) => (reason = r) });
    const front = g.front;
    const back = connectBack(hv, g);
    const w = new DataView(g.page.buffer, g.page.byteOffset);
    // A real write signals the guest; before its handler runs (events are delivered from the
    // event loop), the "backend" rewrites in_prod far past the ring.
    back.writeInput(new Uint8Array([65]));
    w.setUint32(OFF.in_prod, (w.getUint32(OFF.in_cons, true) + 5000) >>> 0, true);
    await eventually(() => front.bad !== undefined, 'front marked bad');
    assert.match(reason!, /bad ring indices from the backend/);
    assert.equal(front.write('more'), 0);
    await back.close();
    front.dispose();
    g.guest.dispose();
  }));
