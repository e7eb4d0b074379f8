/**
 * Machine memory on a shared WebAssembly.Memory: sized once, its copy a memmove within it,
 * and the same memory (and copy) in a worker that was handed it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { XenpvError } from '../base/index.js';
import { MACHINE_PAGE_SIZE, MachineMemory } from './machine.js';
import { ViewAddresses } from './view-addresses.js';

const MiB = 2 ** 20;

test('machine memory: its whole size from the start, frames past it refused with ENOMEM', () => {
  const m = MachineMemory.create(4 * MiB + 1000);
  assert.equal(m.sab.byteLength, 4 * MiB, 'rounded down to 64 KiB pages');
  assert.equal(m.frameCount, 1024);
  m.checkFrames(1024);
  assert.throws(() => m.checkFrames(1025), (e: unknown) => e instanceof XenpvError && e.code === 'ENOMEM');
  assert.throws(() => MachineMemory.create(1000), (e: unknown) => e instanceof XenpvError && e.code === 'EINVAL');
  assert.throws(() => MachineMemory.create(8 * 2 ** 30), (e: unknown) => e instanceof XenpvError && e.code === 'EINVAL');
});

test('machine memory: copy moves bytes between frames, overlapping ranges as memmove', () => {
  const m = MachineMemory.create(MiB);
  const all = new Uint8Array(m.sab);
  for (let i = 0; i < 3 * MACHINE_PAGE_SIZE; i++) all[i] = (i * 13 + 5) & 0xff;
  const before = all.slice(0, 3 * MACHINE_PAGE_SIZE);
  m.copy(10 * MACHINE_PAGE_SIZE + 2, 2, 1514);
  assert.deepEqual(all.subarray(10 * MACHINE_PAGE_SIZE + 2, 10 * MACHINE_PAGE_SIZE + 1516), before.subarray(2, 1516));
  assert.equal(all[10 * MACHINE_PAGE_SIZE + 1], 0, 'nothing before the range written');
  assert.equal(all[10 * MACHINE_PAGE_SIZE + 1516], 0, 'nothing after the range written');
  // Forward and backward overlaps.
  m.copy(100, 0, 5000);
  assert.deepEqual(all.subarray(100, 5100), before.subarray(0, 5000));
  all.set(before);
  m.copy(0, 100, 5000);
  assert.deepEqual(all.subarray(0, 5000), before.subarray(100, 5100));
  // Past the end: refused (a trap), nothing written.
  assert.throws(() => m.copy(MiB - 10, 0, 11));
  assert.equal(all[MiB - 10], 0);
});

test('machine memory: holds() tells views of machine memory from others', () => {
  const m = MachineMemory.create(MiB);
  assert.equal(m.holds(m.bytes(3)), true);
  assert.equal(m.holds(new Uint8Array(16)), false);
  assert.equal(m.holds(new Uint8Array(new SharedArrayBuffer(16))), false);
  assert.equal(m.holds(MachineMemory.create(MiB).bytes(3)), false, 'another machine');
});

test('machine memory: a worker handed the handle sees the same bytes and copies within them', async () => {
  const m = MachineMemory.create(MiB);
  m.bytes(1).fill(0x5a, 0, 100);
  const url = new URL('./machine.js', import.meta.url).href;
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    import(${JSON.stringify(url)}).then(({ MachineMemory }) => {
      const m = new MachineMemory(workerData);
      m.copy(2 * 4096, 4096, 100);
      parentPort.postMessage(m.bytes(2)[99]);
    });`;
  const w = new Worker(code, { eval: true, workerData: m.handle });
  const seen = await new Promise<unknown>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  await w.terminate();
  assert.equal(seen, 0x5a);
  assert.deepEqual(m.bytes(2).subarray(0, 101), Uint8Array.from({ length: 101 }, (_, i) => (i < 100 ? 0x5a : 0)));
});

test('view addresses: a view of machine memory at its byte offset, any other view -1, remembered per slot by identity', () => {
  const m = MachineMemory.create(MiB);
  const memo = new ViewAddresses(m, 2);
  const a = m.bytes(3).subarray(5, 105);
  const b = m.bytes(7);
  const mine = new Uint8Array(100);
  assert.equal(memo.at(0, a), 3 * MACHINE_PAGE_SIZE + 5);
  assert.equal(memo.at(0, a), 3 * MACHINE_PAGE_SIZE + 5, 'again, from the slot');
  assert.equal(memo.at(1, b), 7 * MACHINE_PAGE_SIZE);
  assert.equal(memo.at(0, mine), -1, 'a private buffer replaces the slot');
  assert.equal(memo.at(2, a), 3 * MACHINE_PAGE_SIZE + 5, 'slots wrap: 2 is slot 0 again');
  assert.equal(memo.at(1, MachineMemory.create(MiB).bytes(7)), -1, "another machine's view is not ours, whatever its offset");
});

test('view addresses: a view met again in another slot keeps its address; an address is only true of the machine memory it was worked out for', () => {
  const m = MachineMemory.create(MiB);
  const other = MachineMemory.create(MiB);
  const memo = new ViewAddresses(m, 1);
  const views = Array.from({ length: 8 }, (_, i) => m.bytes(i + 1).subarray(i, 100));
  // One slot, eight views in turn, twice: every answer right though the slot misses each time.
  for (let round = 0; round < 2; round++) views.forEach((v, i) => assert.equal(memo.at(0, v), (i + 1) * MACHINE_PAGE_SIZE + i, `round ${round} view ${i}`));
  // A view of the other memory, at the same offset as one of ours: its own memory's answer, not ours.
  const theirs = other.bytes(1);
  assert.equal(new ViewAddresses(other, 1).at(0, theirs), MACHINE_PAGE_SIZE);
  assert.equal(memo.at(0, theirs), -1);
  assert.equal(new ViewAddresses(other, 4).at(3, theirs), MACHINE_PAGE_SIZE, 'and still its own');
  // A view that takes no new property is worked out every time instead.
  const sealed = Object.preventExtensions(m.bytes(9));
  assert.equal(memo.at(0, sealed), 9 * MACHINE_PAGE_SIZE);
  assert.equal(memo.at(0, views[0]!), MACHINE_PAGE_SIZE);
  assert.equal(memo.at(0, sealed), 9 * MACHINE_PAGE_SIZE);
  // deepStrictEqual compares enumerable symbol keys too: the remembered address is not one.
  assert.deepEqual(views[0], m.bytes(1).subarray(0, 100));
});
