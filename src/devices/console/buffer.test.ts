/**
 * OutputBuffer against a plain-array model under random appends and takes (fast-check):
 * never above capacity, bytes come out in order, what is discarded is exactly the oldest
 * unread bytes, and the marker reports each discard once, before the surviving bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { OutputBuffer } from './buffer.js';
import { discardMarker } from './protocol.js';

type Cmd = { kind: 'append'; bytes: Uint8Array } | { kind: 'take'; max: number };

const cmd = fc.oneof(
  fc.uint8Array({ minLength: 0, maxLength: 300 }).map((bytes): Cmd => ({ kind: 'append', bytes })),
  fc.integer({ min: 1, max: 200 }).map((max): Cmd => ({ kind: 'take', max })),
);

test('OutputBuffer matches a model: bounded, ordered, oldest discarded, marker once per discard', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 257 }), fc.array(cmd, { maxLength: 60 }), (capacity, cmds) => {
      const b = new OutputBuffer(capacity);
      let model: number[] = [];
      let unreported = 0;
      let discarded = 0;
      for (const c of cmds) {
        if (c.kind === 'append') {
          model.push(...c.bytes);
          const over = Math.max(0, model.length - capacity);
          model = model.slice(over);
          unreported += over;
          discarded += over;
          b.append(c.bytes);
        } else {
          const got = b.take(c.max);
          if (unreported > 0) {
            assert.deepEqual(got, discardMarker(unreported));
            unreported = 0;
          } else {
            assert.deepEqual([...got], model.slice(0, c.max));
            model = model.slice(got.length);
          }
        }
        assert.ok(b.size <= capacity);
        assert.equal(b.size, model.length);
        assert.equal(b.discarded, discarded);
        assert.equal(b.readable, model.length > 0 || unreported > 0);
      }
    }),
    { numRuns: 300 },
  );
});

test('an append larger than the capacity keeps only its newest bytes', () => {
  const b = new OutputBuffer(4);
  b.append(new Uint8Array([1, 2]));
  b.append(new Uint8Array([3, 4, 5, 6, 7, 8]));
  assert.equal(b.discarded, 4);
  assert.equal(new TextDecoder().decode(b.take()), '\r\n[xenpv console: 4 bytes of output discarded]\r\n');
  assert.deepEqual([...b.take()], [5, 6, 7, 8]);
  assert.equal(b.readable, false);
});
