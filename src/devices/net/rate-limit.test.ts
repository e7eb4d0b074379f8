import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CreditLimiter, formatRateKey, parseRateKey, parseVifRate } from './rate-limit.js';
import { errorCode } from '../../base/index.js';
import fc from 'fast-check';

test('rate= parses as xl parses it', () => {
  const cases: [string, bigint, number][] = [
    ['10Mb/s@20ms', 25_000n, 20_000],
    ['1MB/s@20ms', 20_000n, 20_000], // the man page's example: 20000 B per 20 ms
    ['100Kb/s', 625n, 50_000], // default interval 50 ms
    ['5GB/s@1s', 5_000_000_000n, 1_000_000],
    ['1B/s@2', 2n, 2_000_000], // no unit = seconds
    ['8b/s@10us', 0n, 10],
    ['1KB/s@3m', 3n, 3_000], // 'm' alone is milliseconds
    ['010B/s@1s', 8n, 1_000_000], // strtoull base 0: a leading zero is octal
  ];
  for (const [spec, bytes, usecs] of cases) {
    assert.deepEqual(parseVifRate(spec), { bytesPerInterval: bytes, intervalUsecs: usecs }, spec);
  }
});

test('bad rate= values are EINVAL or EOVERFLOW', () => {
  const cases: [string, string][] = [
    ['', 'EINVAL'], ['@20ms', 'EINVAL'], ['10Mb', 'EINVAL'], ['10 Mb/s', 'EINVAL'], ['10mb/s', 'EINVAL'],
    ['10Mb/s@20ks', 'EINVAL'], ['10Mb/s@', 'EINVAL'],
    ['0Mb/s', 'EOVERFLOW'], ['4294967296B/s', 'EOVERFLOW'], ['10Mb/s@0ms', 'EOVERFLOW'],
    ['10Mb/s@5000000s', 'EOVERFLOW'],
  ];
  for (const [spec, code] of cases) {
    assert.throws(() => parseVifRate(spec), (e) => errorCode(e) === code, spec);
  }
});

test('the backend rate key round-trips; malformed keys mean unlimited', () => {
  assert.equal(formatRateKey(parseVifRate('10Mb/s@20ms')), '25000,20000');
  assert.deepEqual(parseRateKey('25000,20000'), { creditBytes: 25_000, creditUsecs: 20_000 });
  for (const bad of [undefined, '', '25000', '25000,', ',5', '25000, 20000', '1,2,3', '-1,5', '0x10,5']) {
    assert.equal(parseRateKey(bad), undefined, String(bad));
  }
});

function limiter(creditBytes: number, creditUsecs: number) {
  const t = { now: 0 };
  return { t, lim: new CreditLimiter({ creditBytes, creditUsecs, clock: () => t.now }) };
}

test('packets spend credit; when it is gone they wait for the next interval', () => {
  const { t, lim } = limiter(1000, 50_000);
  assert.equal(lim.tryConsume(600), true);
  assert.equal(lim.tryConsume(400), true);
  assert.equal(lim.tryConsume(1), false);
  assert.equal(lim.retryAt(), 50);
  t.now = 49;
  assert.equal(lim.tryConsume(1), false);
  t.now = 50;
  assert.equal(lim.tryConsume(1), true);
  assert.equal(lim.remainingCredit, 999);
  assert.equal(lim.retryAt(), undefined);
  assert.equal(lim.deferrals, 1);
});

test('sustained throughput is credit per interval', () => {
  const { t, lim } = limiter(1000, 50_000);
  let sent = 0;
  // A greedy sender: tries every millisecond for one second.
  for (t.now = 0; t.now < 1000; t.now++) while (lim.tryConsume(100)) sent += 100;
  // The initial credit plus one credit per elapsed interval (19 refills before t = 1000).
  assert.ok(sent >= 19_000 && sent <= 21_000, `sent ${sent}`);
});

test('a packet larger than one interval of credit waits for credit to build up, then passes', () => {
  const { t, lim } = limiter(1000, 50_000);
  let passedAt = -1;
  for (t.now = 0; t.now <= 1000 && passedAt < 0; t.now++) if (lim.tryConsume(5000)) passedAt = t.now;
  assert.equal(passedAt, 200, 'credit 1000 + 4 refills of 1000 at 50, 100, 150, 200 ms');
  // A maximal netif packet (64 KiB - 1) passes too, thanks to the 128 KiB burst cap.
  const big = limiter(1000, 50_000);
  let ok = false;
  for (big.t.now = 0; big.t.now < 5000 && !ok; big.t.now += 10) ok = big.lim.tryConsume(0xffff);
  assert.ok(ok);
});

test('credit accumulates up to max(credit, 128 KiB) only', () => {
  const { t, lim } = limiter(1000, 50_000);
  assert.equal(lim.tryConsume(1000), true);
  t.now = 1_000_000; // a long idle time
  assert.equal(lim.tryConsume(1500), false, 'one refill when the window is renewed, not one per idle interval');
  assert.equal(lim.remainingCredit, 1000);
  const big = limiter(200_000, 50_000);
  for (let i = 0; i < 10; i++) {
    big.t.now += 50;
    big.lim.tryConsume(200_001); // too big: forces refills
  }
  assert.ok(big.lim.remainingCredit <= 200_000);
});

test('intervals below 1 ms round to 0 as netback does, and unlimited never defers', () => {
  const { lim } = limiter(100, 500);
  for (let i = 0; i < 100; i++) assert.equal(lim.tryConsume(100), true);
  const free = CreditLimiter.unlimited(() => 0);
  for (let i = 0; i < 1000; i++) assert.equal(free.tryConsume(65535), true);
  assert.equal(free.remainingCredit, Number.MAX_SAFE_INTEGER, 'unlimited spends nothing');
  assert.throws(() => new CreditLimiter({ creditBytes: -1, creditUsecs: 0, clock: () => 0 }), (e) => errorCode(e) === 'EINVAL');
});

test('property: what passes stays within the credit schedule, and every packet gets through', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 500, max: 50_000 }),
      fc.integer({ min: 1, max: 200 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 1, max: 0xffff })), { maxLength: 80 }),
      (credit, intervalMs, steps) => {
        const { t, lim } = limiter(credit, intervalMs * 1000);
        let passed = 0;
        for (const [dt, size] of steps) {
          t.now += dt;
          // A sender that retries at the credit timer until its packet goes.
          for (let tries = 0; !lim.tryConsume(size); tries++) {
            assert.ok(tries <= Math.ceil(size / credit) + 1, 'a packet of at most 64 KiB passes once enough credit built up');
            const at = lim.retryAt();
            assert.ok(at !== undefined && at <= t.now + intervalMs, 'the timer is at most one interval away');
            t.now = Math.max(t.now, at);
          }
          passed += size;
          // The window start advances by at least one interval per two credits: a renewal
          // that still cannot fit the packet arms the timer at the old window end, already
          // past, so netback grants a second credit at once. Hence at most two per interval.
          assert.ok(passed <= credit * (1 + 2 * (1 + Math.floor(t.now / intervalMs))), `passed ${passed} by ${t.now} ms`);
        }
      },
    ),
    { numRuns: 200 },
  );
});
