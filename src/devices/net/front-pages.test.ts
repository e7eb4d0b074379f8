/** SpanCache: views of a page's spans, reused while a page's span repeats. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Frame, GrantRef } from '../../base/index.js';
import { SpanCache, type GrantedPage } from './front-pages.js';

function pages(n: number): GrantedPage[] {
  return Array.from({ length: n }, (_, i) => ({ frame: i as Frame, ref: (8 + i) as GrantRef, bytes: new Uint8Array(4096) }));
}

test('each span reads its own page at its own offset and length, as the page is now', () => {
  const p = pages(2);
  const spans = new SpanCache(p);
  p[0]!.bytes.set([1, 2, 3, 4, 5], 10);
  p[1]!.bytes.set([6, 7, 8, 9, 10], 10);
  assert.deepEqual([...spans.get(0, 10, 4)], [1, 2, 3, 4]);
  assert.deepEqual([...spans.get(1, 10, 4)], [6, 7, 8, 9], 'another page, same span');
  p[0]!.bytes.set([11, 12, 13, 14], 10);
  const again = spans.get(0, 10, 4);
  assert.deepEqual([...again], [11, 12, 13, 14], 'rewritten page, same span');
  assert.equal(spans.get(0, 10, 4), again, 'the same view while the span repeats');
  assert.deepEqual([...spans.get(0, 10, 3)], [11, 12, 13], 'shorter');
  assert.deepEqual([...spans.get(0, 11, 3)], [12, 13, 14], 'moved');
  assert.deepEqual([...spans.get(0, 0, 0)], []);
});
