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

async function fileSide(mode, img) {
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
  if (mode === 'prepare') await dom0GrantCheck();
  process.exit(bad === 0 ? 0 : 1);
}

/** The same grant check in dom0, where privcmd lets endAccess read the grant entry. Informational. */
async function dom0GrantCheck() {
  try {
    const { loadXenPlatform } = await import('../dist/hv/xen/index.js');
    const r = await loadXenPlatform();
    if (!r.ok) return say(`dom0 grant check: no xen platform: ${r.reason}`);
    const bad = grantSelfCheck(r.platform);
    await r.platform.close();
    say(`dom0 grant check: ${bad === 0 ? 'ok' : `${bad} failed`}`);
  } catch (err) {
    say(`dom0 grant check threw: ${err.code ?? ''} ${err.message}`);
  }
}

/**
 * The xen platform's grants, against this domain's own gntdev (Xen lets a domain map its own
 * grants): a read-only grant cannot be mapped writable, endAccess is false while the page is
 * mapped, a writable grant carries writes both ways. Returns the number of failures.
 */
function grantSelfCheck(platform) {
  const { grants, memory, domid } = platform;
  const [frame] = memory.allocPages(1);
  const page = memory.page(frame);
  page.fill(0x5a);
  let bad = 0;
  const fail = (s) => { bad++; say(`grant check: ${s}`); };
  step = 'grant check: read-only grant'; say(step);
  const ro = grants.grantAccess(domid, frame, true);
  let refused = false;
  try { grants.map(domid, [ro], true).dispose(); } catch { refused = true; }
  if (!refused) fail(`read-only ref ${ro} mapped writable`);
  step = 'grant check: read-only self-map';
  say(`grant check: read-only ref ${ro} ${refused ? 'refused' : 'ACCEPTED'} a writable map`);
  const m = grants.map(domid, [ro], false);
  step = 'grant check: endAccess while mapped'; say(step);
  if (m.pages[0][100] !== 0x5a) fail(`read-only mapping reads ${m.pages[0][100]}, not 0x5a`);
  const whileMapped = grants.endAccess(ro);
  // A domU's Linux blocks privcmd hypercalls, so there endAccess cannot see the mapping (the
  // platform says so); where it can see, true while mapped is a failure.
  const blind = platform.endAccessSees.startsWith('cannot');
  if (whileMapped && !blind) fail(`endAccess(${ro}) true while mapped (${platform.endAccessSees})`);
  m.dispose();
  if (!whileMapped) { if (!grants.endAccess(ro)) fail(`endAccess(${ro}) false after unmap`); }
  step = 'grant check: writable grant'; say(step);
  const rw = grants.grantAccess(domid, frame, false);
  const w = grants.map(domid, [rw], true);
  w.pages[0][7] = 0xa5;
  page[8] = 0x3c;
  if (page[7] !== 0xa5 || w.pages[0][8] !== 0x3c) fail('writable grant does not share the page');
  w.dispose();
  if (!grants.endAccess(rw)) fail(`endAccess(${rw}) false after unmap`);
  memory.freePages([frame]);
  say(`grant check: ${bad === 0 ? 'ok' : `${bad} failed`}: read-only ref ${ro} refused writable, mapped read-only; endAccess while mapped: ${whileMapped}; ${platform.endAccessSees}`);
  return bad;
}

let step = 'starting';
/** The device under test, for the watchdog's report. */
let disk;

async function domuSide() {
  const t0 = Date.now();
  // Say where it stands instead of leaving the check to time out without the guest's output.
  // Before init.sh's 180 s bound, which powers the domU off with nothing said.
  const watchdog = setTimeout(() => {
    for (const line of disk?.describeQueues() ?? []) say(`stalled: ${line}`);
    say(`FAIL watchdog: no result after 150 s (${step}; ${disk === undefined ? 'no device yet' : `device ${disk.state}, ${disk.pending} pending`})`);
    process.exit(1);
  }, 150_000);
  watchdog.unref();
  const { loadXenPlatform } = await import('../dist/hv/xen/index.js');
  const { XsClient } = await import('../dist/xenstore/client/index.js');
  const { BlkFront } = await import('../dist/devices/blk/index.js');
  const r = await loadXenPlatform();
  if (!r.ok) return say(`FAIL xen platform unavailable: ${r.reason}`);
  const platform = r.platform;
  let bad = 0;
  try { bad = grantSelfCheck(platform); } catch (err) { bad = 1; say(`grant check threw: ${err.code ?? ''} ${err.message}`); }
  step = 'store'; say(step);
  const store = new XsClient(await platform.openStore());
  const devids = await store.directory(`/local/domain/${platform.domid}/device/vbd`);
  say(`platform ${platform.describe()}, vbds: ${devids.join(' ')}`);
  // Linux's /dev/xen/xenbus deadlocks when a WATCH or UNWATCH is written while earlier
  // requests of the same file are unanswered (hv/xen/xenbus-gate.ts). Eight rounds of 16
  // reads not awaited, then a watch and its removal: without the gate the first round's
  // WATCH write blocked for good in one boot of four, and blkfront's own watch later in others.
  step = 'xenbus: watches behind unanswered reads';
  const t1 = Date.now();
  const vbd = `/local/domain/${platform.domid}/device/vbd/${devids[0]}`;
  for (let round = 0; round < 8; round++) {
    const reads = Array.from({ length: 16 }, () => store.read(`${vbd}/backend`));
    const w = store.watch(`${vbd}/state`);
    await w.ready;
    w.dispose();
    await Promise.all(reads);
  }
  say(`xenbus: 8 watches each behind 16 unanswered reads, registered and removed in ${Date.now() - t1} ms`);
  disk = new BlkFront(platform, store, `/local/domain/${platform.domid}/device/vbd/${devids[0]}`);
  const timer = setTimeout(() => { say('FAIL not connected after 60 s'); process.exit(1); }, 60_000);
  await disk.start();
  clearTimeout(timer);
  const backend = new TextDecoder().decode(await store.read(`${disk.frontPath}/backend`));
  step = 'connected';
  say(`connected in ${Date.now() - t0} ms to ${backend}: ${JSON.stringify(disk.info)}`);
  for (const [sector, len] of A) {
    step = `reading ${len} bytes at sector ${sector}`;
    const buf = new Uint8Array(len);
    try { await disk.read(sector, buf); } catch (err) { bad++; say(`read of ${len} bytes at sector ${sector} failed: ${err.message}`); continue; }
    if (!same(buf, pattern(1, sector, len))) { bad++; say(`read of dom0's data differs at sector ${sector}`); }
  }
  step = 'reads done';
  say(`read ${A.length} regions dom0 wrote: ${bad === 0 ? 'all equal' : `${bad} differ`}`);
  step = 'writing';
  await Promise.all(B.map(([sector, len]) => disk.write(sector, pattern(2, sector, len))));
  step = 'flushing';
  await disk.flush();
  step = 'reading back';
  for (const [sector, len] of B) {
    const buf = new Uint8Array(len);
    await disk.read(sector, buf);
    if (!same(buf, pattern(2, sector, len))) { bad++; say(`read-back differs at sector ${sector}`); }
  }
  say(`wrote ${B.length} regions concurrently, flushed, read back: counters ${JSON.stringify(disk.counters)}`);
  step = `closing (read back; counters ${JSON.stringify(disk.counters)})`;
  await disk.close();
  store.close();
  await platform.close();
  say(bad === 0 ? `PASS in ${Date.now() - t0} ms` : `FAIL ${bad} mismatches`);
}

const [mode, img] = process.argv.slice(2);
if (mode === 'prepare' || mode === 'verify') await fileSide(mode, img);
else await domuSide().catch((err) => { say(`FAIL ${err.code ?? ''} ${err.stack ?? err}`); process.exit(1); });
