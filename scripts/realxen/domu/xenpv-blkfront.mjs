// xenpv's blkfront in a domU's userspace on the `xen` platform, against whatever backend the
// toolstack gave the domU's first vbd (in the check: Linux's kernel blkback in dom0).
// Modes (one file so that both sides use the same data pattern):
//   node xenpv-blkfront.mjs prepare IMG   (dom0) write pattern A where the domU will read it
//   node xenpv-blkfront.mjs domu          (domU) read and verify A, write B, flush, read B back
//   node xenpv-blkfront.mjs verify IMG    (dom0) after the domU: B is in the image file
// Prints XENPV-BLKFRONT lines; the last one is PASS or FAIL.
import { openSync, readSync, writeSync, closeSync } from 'node:fs';

const MiB = 1 << 20;
/** [sector, bytes]: page-aligned and not, one page to many (several requests, indirect). */
const A = [[0, 4096], [8, 512], [2048, 1 * MiB], [10_001, 45_056]];
const B = [[4096, 4096], [4104, 1536], [8192, 2 * MiB], [20_003, 77_824], [30_000, 512]];

/** Deterministic bytes for (seed, sector): what was written is known to both sides. */
function pattern(seed, sector, len) {
  const out = new Uint8Array(len);
  let x = (seed * 0x9e3779b1 + sector * 0x85ebca6b + 1) >>> 0;
  for (let i = 0; i < len; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}
const same = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);
const say = (s) => console.log(`XENPV-BLKFRONT ${s}`);

function fileSide(mode, img) {
  const fd = openSync(img, 'r+');
  let bad = 0;
  for (const [sector, len] of mode === 'prepare' ? A : B) {
    if (mode === 'prepare') writeSync(fd, pattern(1, sector, len), 0, len, sector * 512);
    else {
      const got = new Uint8Array(len);
      readSync(fd, got, 0, len, sector * 512);
      if (!same(got, pattern(2, sector, len))) { bad++; say(`dom0 image differs at sector ${sector}`); }
    }
  }
  closeSync(fd);
  say(mode === 'prepare' ? `prepared ${A.length} regions` : bad === 0 ? `PASS dom0 found all ${B.length} regions the domU wrote` : `FAIL ${bad} regions differ`);
  process.exit(bad === 0 ? 0 : 1);
}

async function domuSide() {
  const t0 = Date.now();
  const { loadXenPlatform } = await import('../dist/hv/xen/index.js');
  const { XsClient } = await import('../dist/xenstore/client/index.js');
  const { BlkFront } = await import('../dist/devices/blk/index.js');
  const r = await loadXenPlatform({ grantPeer: 0 });
  if (!r.ok) return say(`FAIL xen platform unavailable: ${r.reason}`);
  const platform = r.platform;
  const store = new XsClient(await platform.openStore());
  const devids = await store.directory(`/local/domain/${platform.domid}/device/vbd`);
  say(`platform ${platform.describe()}, vbds: ${devids.join(' ')}`);
  const disk = new BlkFront(platform, store, `/local/domain/${platform.domid}/device/vbd/${devids[0]}`);
  const timer = setTimeout(() => { say('FAIL not connected after 60 s'); process.exit(1); }, 60_000);
  await disk.start();
  clearTimeout(timer);
  const backend = new TextDecoder().decode(await store.read(`${disk.frontPath}/backend`));
  say(`connected in ${Date.now() - t0} ms to ${backend}: ${JSON.stringify(disk.info)}`);
  let bad = 0;
  for (const [sector, len] of A) {
    const buf = new Uint8Array(len);
    await disk.read(sector, buf);
    if (!same(buf, pattern(1, sector, len))) { bad++; say(`read of dom0's data differs at sector ${sector}`); }
  }
  say(`read ${A.length} regions dom0 wrote: ${bad === 0 ? 'all equal' : `${bad} differ`}`);
  await Promise.all(B.map(([sector, len]) => disk.write(sector, pattern(2, sector, len))));
  await disk.flush();
  for (const [sector, len] of B) {
    const buf = new Uint8Array(len);
    await disk.read(sector, buf);
    if (!same(buf, pattern(2, sector, len))) { bad++; say(`read-back differs at sector ${sector}`); }
  }
  say(`wrote ${B.length} regions concurrently, flushed, read back: counters ${JSON.stringify(disk.counters)}`);
  await disk.close();
  store.close();
  await platform.close();
  say(bad === 0 ? `PASS in ${Date.now() - t0} ms` : `FAIL ${bad} mismatches`);
}

const [mode, img] = process.argv.slice(2);
if (mode === 'prepare' || mode === 'verify') fileSide(mode, img);
else await domuSide().catch((err) => say(`FAIL ${err.code ?? ''} ${err.stack ?? err}`));
