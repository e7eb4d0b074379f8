import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { XenpvError } from '../../../base/index.js';
import { openStorage, parseSize } from './open.js';
import { noQemuImg, qemuImg, tempDir } from './test-util.js';

const dir = tempDir('open');
after(() => dir.remove());
const code = (c: string) => (err: unknown) => err instanceof XenpvError && err.code === c;

describe('openStorage', () => {
  test('memory disks from a size', async () => {
    const disk = await openStorage({ format: 'memory', target: '4M' });
    assert.equal(disk.sectorCount, 8192);
    assert.equal(disk.description, 'memory');
    await disk.close();
  });

  test('raw files, described by path', async () => {
    const path = dir.file('r.img');
    writeFileSync(path, new Uint8Array(65536));
    const disk = await openStorage({ format: 'raw', target: path });
    assert.equal(disk.sectorCount, 128);
    assert.equal(disk.description, `raw:${path}`);
    await disk.close();
  });

  test('a raw file opened for a backend thread says what moves its data, and why not more', async () => {
    const path = dir.file('e.img');
    writeFileSync(path, new Uint8Array(65536));
    const disk = await openStorage({ format: 'raw', target: path, sync: true });
    assert.match(disk.syncIo?.engine ?? '', /^(io_uring \+ Linux AIO|Linux AIO \(no io_uring: .+\)|preadv\/pwritev \(no Linux AIO: .+\))$/);
    await disk.close();
    const plain = await openStorage({ format: 'raw', target: path, sync: true, aio: false });
    assert.equal(plain.syncIo?.engine, 'preadv/pwritev (batches turned off for this disk)');
    await plain.close();
  });

  test('a missing file and an unknown format are clear errors', async () => {
    await assert.rejects(openStorage({ format: 'raw', target: dir.file('nope.img') }), code('EINVAL'));
    await assert.rejects(openStorage({ format: 'vhd' as 'raw', target: 'x' }), code('EINVAL'));
  });

  test('a qcow2 image that names itself as backing file is refused, not followed forever', { skip: noQemuImg }, async () => {
    const path = dir.file('loop.qcow2');
    assert.equal(qemuImg('create', '-q', '-f', 'qcow2', path, '1M').status, 0);
    // Point the backing file name at the image itself (qemu-img refuses to create this).
    assert.equal(qemuImg('rebase', '-q', '-u', '-f', 'qcow2', '-b', 'loop.qcow2', '-F', 'qcow2', path).status, 0);
    await assert.rejects(openStorage({ format: 'qcow2', target: path }), code('EBADIMG'));
  });

  test('parseSize', () => {
    assert.equal(parseSize('64M'), 64 * 1024 * 1024);
    assert.equal(parseSize('1GiB'), 1024 ** 3);
    assert.equal(parseSize('4096'), 4096);
    assert.throws(() => parseSize('12'), code('EINVAL'));
    assert.throws(() => parseSize('lots'), code('EINVAL'));
  });
});
