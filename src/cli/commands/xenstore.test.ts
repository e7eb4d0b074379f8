import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostStoreEnv } from './xenstore.js';

test('xenpv xenstore finds the running host’s store, and never overrides XENSTORED_PATH/RUNDIR', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xenpv-xsenv-'));
  try {
    const none: NodeJS.ProcessEnv = { XENPV_RUN_DIR: dir };
    hostStoreEnv(none);
    assert.equal(none.XENSTORED_PATH, undefined, 'no host socket: Xen’s own default applies');

    writeFileSync(join(dir, 'xenstored.sock'), '');
    const found: NodeJS.ProcessEnv = { XENPV_RUN_DIR: dir };
    hostStoreEnv(found);
    assert.equal(found.XENSTORED_PATH, join(dir, 'xenstored.sock'));

    const explicit: NodeJS.ProcessEnv = { XENPV_RUN_DIR: dir, XENSTORED_PATH: '/x/socket' };
    hostStoreEnv(explicit);
    assert.equal(explicit.XENSTORED_PATH, '/x/socket');

    const rundir: NodeJS.ProcessEnv = { XENPV_RUN_DIR: dir, XENSTORED_RUNDIR: '/y' };
    hostStoreEnv(rundir);
    assert.equal(rundir.XENSTORED_PATH, undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
