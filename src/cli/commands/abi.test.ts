import { test } from 'node:test';
import assert from 'node:assert/strict';
import { abiJson, abiText } from './abi.js';
import { buildProgram } from '../main.js';

test('xenpv abi --json: structs per ABI with C names, constants by macro name', () => {
  const j = abiJson();
  assert.deepEqual(j.structs['blkif_request']?.x86_64, {
    size: 112,
    fields: { operation: 0, nr_segments: 1, handle: 2, id: 8, sector_number: 16, seg: 24 },
  });
  assert.equal(j.structs['blkif_request']?.x86_32.size, 108);
  assert.equal(j.structs['shared_info']?.x86_64.size, 3136);
  assert.equal(j.constants['BLKIF_OP_READ'], 0);
  assert.equal(j.constants['GNTST_permission_denied'], -8);
  assert.equal(j.constants['XS_WRITE_CREATE_EXCL'], 'CREATE|EXCL');
  assert.equal(j.constants['XS_GET_QUOTA'], 25);
  // Round-trips through JSON unchanged (no bigint, no undefined).
  assert.deepEqual(JSON.parse(JSON.stringify(j)), j);
});

test('xenpv abi: text listing names headers, structs and marks unchecked constants', () => {
  const t = abiText();
  assert.match(t, /^xen\/io\/blkif\.h$/m);
  assert.match(t, /struct blkif_request\s+x86_64\s+x86_32/);
  assert.match(t, /^\s+id\s+8\s+4$/m);
  assert.match(t, /XS_SET_QUOTA\s+26 \(0x1a\)\s+\[not checked: note \d\]/);
});

test('xenpv abi --json is wired into the CLI', async () => {
  let out = '';
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string) => {
    out += chunk;
    return true;
  }) as typeof process.stdout.write;
  try {
    await buildProgram().parseAsync(['abi', '--json'], { from: 'user' });
  } finally {
    process.stdout.write = write;
  }
  assert.equal(JSON.parse(out).structs.xsd_sockmsg.x86_64.size, 16);
});
