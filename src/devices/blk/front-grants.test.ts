/**
 * The frontend's grant reclaimer (front-grants.ts): a grant the peer still maps is retried on a
 * timer, and that timer does not keep a process alive on its own.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MODULE = fileURLToPath(new URL('./front-grants.js', import.meta.url));

test('a grant the peer never lets go of is retried without keeping the process alive', () => {
  // A child whose only work is one release that can never end (endAccess is always refused).
  const script = `
    const { GrantReclaimer } = await import(${JSON.stringify(MODULE)});
    let tries = 0;
    const platform = { grants: { endAccess: () => (tries++, false) }, memory: { freePages: () => { throw new Error('freed a mapped page'); } } };
    const r = new GrantReclaimer(platform);
    r.release({ ref: 7, frame: 3 });
    for (let i = 0; i < 200 && tries < 3; i++) await new Promise((ok) => setTimeout(ok, 10));
    if (tries < 3 || r.pending !== 1) { console.error('not retried', tries, r.pending); process.exit(2); }
  `;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { timeout: 5000, encoding: 'utf8' });
  assert.equal(child.error, undefined, 'the child exits by itself (no timeout kill)');
  assert.equal(child.status, 0, child.stderr);
});
