/**
 * The checked layer's batch (checked.ts batchCall) around a store whose submission fails as a
 * whole: every op that went to the store fails with its error, refused ops keep their own,
 * and all of them are counted, as the one-at-a-time path counts a throw.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { XenpvError } from '../../../base/index.js';
import { CheckedStorage } from './checked.js';
import type { StorageCapabilities, SyncBlockIo, SyncBlockOp } from './types.js';

class FailingBatchStore extends CheckedStorage {
  readonly sectorCount = 64;
  readonly logicalBlockSize = 512;
  readonly physicalBlockSize = 4096;
  readonly readOnly = false;
  readonly description = 'failing-batch';
  readonly capabilities: StorageCapabilities = {
    flush: false,
    resize: false,
    discard: { supported: false, granularity: 512, alignment: 0, discardZeroes: false, secureDiscard: false },
  };
  readonly syncIo: SyncBlockIo;
  submitted = 0;

  constructor() {
    super();
    const none = (): void => undefined;
    this.syncIo = this.checkedSyncIo(none, none, {
      maxOps: 8,
      maxBuffers: 8,
      run: (ops) => {
        this.submitted += ops.length;
        throw new XenpvError('EIO', 'the submission failed');
      },
    });
  }

  protected async doRead(): Promise<void> {}
  protected async doWrite(): Promise<void> {}
  protected async doFlush(): Promise<void> {}
  protected async doDiscard(): Promise<void> {}
  async close(): Promise<void> {}
}

const op = (write: boolean, sector: number): SyncBlockOp => ({ write, sector, bufs: [new Uint8Array(512)], bytes: 512 });

test('checked batch: a submission that throws fails each op it carried, refusals stay theirs, all counted', () => {
  const s = new FailingBatchStore();
  const errors: unknown[] = [];
  s.syncIo.batch!.run([op(false, 0), op(false, 64), op(true, 8)], errors);
  assert.equal(s.submitted, 2, 'the op past the end never reached the store');
  assert.ok(errors[0] instanceof XenpvError && errors[0].code === 'EIO');
  assert.ok(errors[1] instanceof XenpvError && errors[1].code === 'ERANGE');
  assert.ok(errors[2] instanceof XenpvError && errors[2].code === 'EIO');
  assert.deepEqual([s.counters.read.requests, s.counters.read.errors, s.counters.write.requests, s.counters.write.errors], [2, 2, 1, 1]);
  const all: unknown[] = [];
  s.syncIo.batch!.run([op(false, 0), op(true, 8)], all);
  assert.ok(all.every((e) => e instanceof XenpvError && e.code === 'EIO'), 'none refused: every op fails with the store');
  assert.equal(s.counters.read.errors + s.counters.write.errors, 5);
});
