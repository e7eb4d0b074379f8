import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bridge, BridgeSet } from './bridge.js';
import { FakeClock, RecordingSink, ethFrame } from './test-support.js';
import { errorCode } from '../../../base/index.js';
import { parseMac, vifName } from './mac.js';

const A = '00:16:3e:00:00:0a';
const B = '00:16:3e:00:00:0b';
const C = '00:16:3e:00:00:0c';
const BCAST = 'ff:ff:ff:ff:ff:ff';

function setup(opts: { ageingMs?: number; fdbMax?: number } = {}) {
  const clock = new FakeClock(1000);
  const br = new Bridge('xenbr0', { clock: clock.now, ...opts });
  const sa = new RecordingSink();
  const sb = new RecordingSink();
  const sc = new RecordingSink();
  const pa = br.addPort(vifName(1, 0), sa);
  const pb = br.addPort(vifName(2, 0), sb);
  const pc = br.addPort(vifName(3, 0), sc);
  return { clock, br, sa, sb, sc, pa, pb, pc };
}

test('unknown unicast floods to every port but the ingress one', () => {
  const { sa, sb, sc, pa, br } = setup();
  assert.equal(pa.input(ethFrame(B, A)), true);
  assert.equal(sa.frames.length, 0);
  assert.equal(sb.frames.length, 1);
  assert.equal(sc.frames.length, 1);
  assert.equal(br.counters.flooded, 1);
});

test('a learned address is forwarded to its port only', () => {
  const { sa, sb, sc, pa, pb, br } = setup();
  pa.input(ethFrame(B, A)); // learns A on vif1.0
  pb.input(ethFrame(A, B)); // learns B on vif2.0; A is known
  assert.equal(sa.frames.length, 1);
  assert.equal(sc.frames.length, 1, 'C saw only the first, flooded frame');
  pa.input(ethFrame(B, A));
  assert.equal(sb.frames.length, 2);
  assert.equal(sc.frames.length, 1);
  assert.equal(br.counters.forwarded, 2);
  assert.deepEqual(
    br.macTable().map((e) => [e.mac, e.port]).sort(),
    [[A, 'vif1.0'], [B, 'vif2.0']],
  );
});

test('broadcast and multicast flood', () => {
  const { sa, sb, sc, pa, pb } = setup();
  pb.input(ethFrame(A, B));
  pa.input(ethFrame(BCAST, A));
  pa.input(ethFrame('01:00:5e:00:00:01', A));
  assert.equal(sa.frames.length, 1);
  assert.equal(sb.frames.length, 2);
  assert.equal(sc.frames.length, 3);
});

test('no hairpin: a frame for an address learned on the ingress port is filtered', () => {
  const { sa, sb, sc, pa, br } = setup();
  pa.input(ethFrame(B, A));
  pa.input(ethFrame(C, A)); // both from vif1.0; now pretend C lives on vif1.0 too
  pa.input(ethFrame(A, C));
  const before = [sb.frames.length, sc.frames.length];
  pa.input(ethFrame(C, A));
  assert.equal(sa.frames.length, 0, 'nothing ever goes back out of vif1.0');
  assert.deepEqual([sb.frames.length, sc.frames.length], before);
  assert.equal(br.counters.filtered, 2);
});

test('entries age out after 300 s by default, and a station that moves is followed', () => {
  const { clock, sa, sc, pa, pb, pc, br } = setup();
  assert.equal(br.ageingMs, 300_000);
  pa.input(ethFrame(B, A));
  clock.advance(299_999);
  pb.input(ethFrame(A, B));
  assert.equal(sc.frames.length, 1, 'A still known: not flooded');
  clock.advance(1);
  pb.input(ethFrame(A, B));
  assert.equal(sc.frames.length, 2, 'A aged out: flooded again');
  assert.equal(sa.frames.length, 2);
  pc.input(ethFrame(B, A)); // A moved to vif3.0
  pb.input(ethFrame(A, B));
  assert.equal(sc.frames.length, 3);
  assert.equal(sa.frames.length, 2, 'B was known, so nothing reached vif1.0; nor did the reply');
  assert.equal(br.fdbStats().moves, 0, 'A had aged out, so it was a new entry, not a move');
  pa.input(ethFrame(B, A));
  assert.equal(br.fdbStats().moves, 1);
});

test('ageing time 0 never expires; sweep removes aged entries', () => {
  const { clock, pa, br } = setup({ ageingMs: 0 });
  pa.input(ethFrame(B, A));
  clock.advance(10 * 365 * 86400_000);
  assert.equal(br.macTable().length, 1);
  br.ageingMs = 1000;
  assert.equal(br.sweep(), 1);
  assert.equal(br.macTable().length, 0);
  assert.throws(() => (br.ageingMs = -1), (e) => errorCode(e) === 'EINVAL');
});

test('per-port counters count bytes and packets each way', () => {
  const { pa, pb } = setup();
  pa.input(ethFrame(B, A, 0x0800, 100));
  pb.input(ethFrame(A, B, 0x0800, 50));
  assert.deepEqual(
    [pa.stats().rxPackets, pa.stats().rxBytes, pa.stats().txPackets, pa.stats().txBytes],
    [1, 114, 1, 64],
  );
  assert.deepEqual([pb.stats().rxPackets, pb.stats().rxBytes, pb.stats().txPackets, pb.stats().txBytes], [1, 64, 1, 114]);
});

test('runts, oversize frames and bad source addresses are counted errors, never thrown', () => {
  const { pa, sb, br } = setup();
  for (let n = 0; n < 14; n++) assert.equal(pa.input(new Uint8Array(n)), false);
  assert.equal(pa.input(new Uint8Array(0x10000)), false);
  assert.equal(pa.input(ethFrame(B, '01:00:5e:00:00:01')), false);
  assert.equal(pa.input(ethFrame(B, '00:00:00:00:00:00')), false);
  assert.equal(pa.input(ethFrame(B, A), { csumBlank: false, dataValidated: false, gso: { type: 'tcpv4', size: 0 } }), false);
  const s = pa.stats();
  assert.deepEqual([s.rxErrors, s.rxRunts, s.rxOversize, s.rxBadGso, s.rxBadSource, s.rxPackets], [18, 14, 1, 1, 2, 0]);
  assert.equal(sb.frames.length, 0);
  assert.equal(br.macTable().length, 0, 'nothing learned from invalid frames');
  assert.equal(pa.input(ethFrame(B, A, 0x0800, 0)), true, 'a bare 14-byte header is a frame');
});

test('a port that never drains is bounded; the other ports keep working', () => {
  const clock = new FakeClock();
  const br = new Bridge('xenbr1', { clock: clock.now });
  const stuck = new RecordingSink();
  stuck.accept = false;
  const ok = new RecordingSink();
  const src = br.addPort('vif1.0', new RecordingSink());
  const ps = br.addPort('vif2.0', stuck, { queueFrames: 8 });
  br.addPort('vif3.0', ok);
  for (let i = 0; i < 100; i++) src.input(ethFrame(BCAST, A));
  assert.equal(ps.queueLength, 8);
  assert.equal(ps.stats().txDropped, 92);
  assert.equal(ps.stats().txQueueFull, 92);
  assert.equal(ps.stats().txPackets, 0);
  assert.equal(ok.frames.length, 100);
  stuck.accept = true;
  ps.wake();
  assert.equal(stuck.frames.length, 8);
  assert.equal(ps.queueLength, 0);
  assert.equal(ps.stats().txPackets, 8);
});

test('the egress queue is also bounded in bytes', () => {
  const br = new Bridge('xenbr0', { clock: () => 0 });
  const stuck = new RecordingSink();
  stuck.accept = false;
  const src = br.addPort('vif1.0', new RecordingSink());
  const ps = br.addPort('vif2.0', stuck, { queueBytes: 5000 });
  for (let i = 0; i < 10; i++) src.input(ethFrame(BCAST, A, 0x0800, 1000));
  assert.equal(ps.queueLength, 4);
  assert.ok(ps.queueBytes <= 5000);
  assert.equal(ps.stats().txDropped, 6);
});

test('frames over the egress MTU pass only as GSO to a GSO port', () => {
  const br = new Bridge('xenbr0', { clock: () => 0 });
  const plain = new RecordingSink();
  const gso = new RecordingSink();
  const src = br.addPort('vif1.0', new RecordingSink());
  const pp = br.addPort('vif2.0', plain);
  br.addPort('vif3.0', gso, { gso: true });
  src.input(ethFrame(BCAST, A, 0x0800, 1504)); // MTU + VLAN tag: still fits
  src.input(ethFrame(BCAST, A, 0x0800, 1505));
  src.input(ethFrame(BCAST, A, 0x0800, 65000), { csumBlank: true, dataValidated: false, gso: { type: 'tcpv4', size: 1448 } });
  assert.equal(plain.frames.length, 1);
  assert.equal(pp.stats().txTooBig, 2);
  assert.equal(gso.frames.length, 2);
  assert.equal(gso.frames[1]!.info.gso?.size, 1448);
});

test('a throwing sink loses the frame with txErrors; the bridge does not throw', () => {
  const br = new Bridge('xenbr0', { clock: () => 0 });
  const ok = new RecordingSink();
  const src = br.addPort('vif1.0', new RecordingSink());
  const bad = br.addPort('vif2.0', { deliver: () => { throw new Error('sink bug'); } });
  br.addPort('vif3.0', ok);
  assert.equal(src.input(ethFrame(BCAST, A)), true);
  assert.equal(bad.stats().txErrors, 1);
  assert.equal(bad.queueLength, 0);
  assert.equal(ok.frames.length, 1);
});

test('a sink that answers synchronously re-enters the bridge safely', () => {
  const br = new Bridge('xenbr0', { clock: () => 0 });
  const got: string[] = [];
  const pa = br.addPort('vif1.0', { deliver: () => (got.push('a'), true) });
  const pb: { p?: ReturnType<typeof br.addPort> } = {};
  pb.p = br.addPort('vif2.0', {
    deliver: (f) => {
      got.push('b');
      if (f[0] === 0xff) pb.p!.input(ethFrame(A, B)); // reply to the broadcast
      return true;
    },
  });
  pa.input(ethFrame(BCAST, A));
  assert.deepEqual(got, ['b', 'a']);
});

test('input copies the frame: the caller may reuse its buffer', () => {
  const { pa, sb } = setup();
  const f = ethFrame(B, A, 0x0800, 10, 0x11);
  pa.input(f);
  f.fill(0);
  assert.equal(sb.frames[0]!.frame[20], 0x11);
});

/** A sink that copies what it keeps (as netback does), recording the frames it was handed. */
class CopyingSink {
  readonly copiesFrame = true;
  readonly handed: Uint8Array[] = [];
  readonly kept: Uint8Array[] = [];
  accept = true;
  deliver(frame: Uint8Array): boolean {
    this.handed.push(frame);
    if (!this.accept) return false;
    this.kept.push(frame.slice());
    return true;
  }
}

test('cut-through: a copying sink gets a borrowed frame as is; what must wait, or floods, is copied', () => {
  const br = new Bridge('xenbr0', { clock: new FakeClock(1000).now });
  const pa = br.addPort(vifName(1, 0), new RecordingSink());
  const sb = new CopyingSink();
  const pb = br.addPort(vifName(2, 0), sb);
  const sc = new RecordingSink();
  br.addPort(vifName(3, 0), sc);
  pb.input(ethFrame(A, B)); // learn B (flooded: A is not known yet)
  const flooded = sc.frames.length;
  const f = ethFrame(B, A, 0x0800, 10, 0x11);
  pa.input(f, undefined, false);
  assert.equal(sb.handed[0], f, 'no copy on the way to a sink that copies');
  assert.equal(sc.frames.length, flooded, 'known unicast: not flooded');
  sb.accept = false;
  const g = ethFrame(B, A, 0x0800, 10, 0x22);
  pa.input(g, undefined, false);
  g.fill(0); // the sender reuses its buffer
  sb.accept = true;
  pb.wake();
  assert.equal(sb.kept.length, 2);
  assert.notEqual(sb.handed.at(-1), g, 'a refused frame waits as a copy');
  assert.equal(sb.kept[1]![20], 0x22);
  const h = ethFrame(C, A, 0x0800, 10, 0x33); // C unknown: flooded
  pa.input(h, undefined, false);
  h.fill(0);
  assert.equal(sc.frames.at(-1)!.frame[20], 0x33);
  assert.equal(sb.kept.at(-1)![20], 0x33);
});

test('a port that cannot take blank checksums gets them filled; others get them blank', () => {
  const br = new Bridge('xenbr0', { clock: () => 0 });
  const blank = new RecordingSink();
  const filled = new RecordingSink();
  const src = br.addPort('vif1.0', new RecordingSink());
  br.addPort('vif2.0', blank);
  br.addPort('vif3.0', filled, { csumOffload: false });
  // IPv4/UDP 10.0.0.1:1 -> 10.0.0.2:2, 2 payload bytes, UDP checksum left zero.
  const f = ethFrame(BCAST, A, 0x0800, 30, 0);
  f.set([0x45, 0, 0, 30, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2], 14);
  f.set([0, 1, 0, 2, 0, 10, 0, 0, 0x61, 0x62], 34);
  src.input(f, { csumBlank: true, dataValidated: false });
  assert.equal(blank.frames[0]!.frame[40], 0);
  assert.equal(blank.frames[0]!.info.csumBlank, true);
  const g = filled.frames[0]!;
  // Independent sum: pseudo 0a00+0001+0a00+0002+0011+000a, UDP 0001+0002+000a+0000+6162.
  const sum = 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 0x0011 + 0x000a + 0x0001 + 0x0002 + 0x000a + 0x6162;
  assert.equal((g.frame[40]! << 8) | g.frame[41]!, ~sum & 0xffff);
  assert.equal(g.info.csumBlank, false);
  assert.equal(br.counters.csumFilled, 1);
});

test('removing a port forgets its addresses and drops its queue', () => {
  const { pa, pb, sc, br } = setup();
  pa.input(ethFrame(B, A));
  assert.equal(br.removePort('vif1.0'), true);
  assert.equal(br.removePort('vif1.0'), false);
  assert.equal(pa.input(ethFrame(B, A)), false);
  assert.equal(pa.stats().rxDropped, 1);
  pb.input(ethFrame(A, B));
  assert.equal(sc.frames.length, 2, 'A is unknown again: flooded');
  assert.equal(br.ports().length, 2);
});

test('a full forwarding table stops learning; frames still flow', () => {
  const { pa, pb, sc, br } = setup({ fdbMax: 2 });
  pa.input(ethFrame(B, A));
  pb.input(ethFrame(A, B));
  pa.input(ethFrame(B, '00:16:3e:00:00:99'));
  assert.equal(br.fdbStats().entries, 2);
  assert.equal(br.fdbStats().fullDrops, 1);
  pb.input(ethFrame('00:16:3e:00:00:99', B));
  assert.equal(sc.frames.length, 2, 'unlearned address is flooded');
});

test('802.1D link-local frames are not forwarded', () => {
  const { pa, sb, sc, br } = setup();
  pa.input(ethFrame('01:80:c2:00:00:00', A));
  assert.equal(sb.frames.length + sc.frames.length, 0);
  assert.equal(br.counters.linkLocal, 1);
  pa.input(ethFrame('01:80:c2:00:00:10', A));
  assert.equal(sb.frames.length, 1, '01:80:c2:00:00:10 is ordinary multicast');
});

test('port and bridge names are validated and unique', () => {
  const br = new Bridge('xenbr0', { clock: () => 0 });
  br.addPort('vif1.0', new RecordingSink());
  assert.throws(() => br.addPort('vif1.0', new RecordingSink()), (e) => errorCode(e) === 'EEXIST');
  assert.throws(() => br.addPort('a/b', new RecordingSink()), (e) => errorCode(e) === 'EINVAL');
  assert.throws(() => br.addPort('x'.repeat(16), new RecordingSink()), (e) => errorCode(e) === 'EINVAL');
  assert.throws(() => new Bridge(''), (e) => errorCode(e) === 'EINVAL');
  const small = new Bridge('br', { maxPorts: 1 });
  small.addPort('p0', new RecordingSink());
  assert.throws(() => small.addPort('p1', new RecordingSink()), (e) => errorCode(e) === 'ENOSPC');
});

test('BridgeSet creates bridges on first use', () => {
  const set = new BridgeSet({ clock: () => 0 });
  assert.equal(set.find('xenbr0'), undefined);
  const b = set.get('xenbr0');
  assert.equal(set.get('xenbr0'), b);
  b.addPort('vif1.0', new RecordingSink());
  set.dispose();
  assert.equal(b.ports().length, 0);
  assert.equal(set.list().length, 0);
});

test('a port locked to its MAC drops spoofed sources', () => {
  const br = new Bridge('xenbr0', { clock: () => 0 });
  const other = new RecordingSink();
  const locked = br.addPort('vif1.0', new RecordingSink(), { lockedMac: parseMac(A) });
  br.addPort('vif2.0', other);
  assert.equal(locked.input(ethFrame(BCAST, A)), true);
  assert.equal(locked.input(ethFrame(BCAST, B)), false);
  assert.deepEqual([locked.stats().rxSpoofed, locked.stats().rxDropped, other.frames.length], [1, 1, 1]);
  assert.deepEqual(br.macTable().map((e) => e.mac), [A], 'the spoofed address was not learned');
});

test('a sink may remove its own port while frames are queued', () => {
  const br = new Bridge('xenbr0', { clock: () => 0 });
  const src = br.addPort('vif1.0', new RecordingSink());
  const stuck = new RecordingSink();
  stuck.accept = false;
  const p = br.addPort('vif2.0', { deliver: (f, i) => (stuck.accept ? (br.removePort('vif2.0'), true) : stuck.deliver(f, i)) });
  for (let i = 0; i < 3; i++) src.input(ethFrame(BCAST, A));
  assert.equal(p.queueLength, 3);
  stuck.accept = true;
  p.wake();
  assert.deepEqual([p.isAttached, p.queueLength, p.queueBytes], [false, 0, 0]);
  assert.equal(p.stats().txPackets, 1);
  assert.equal(p.stats().txDropped, 2, 'the rest of the queue was dropped when the port left');
});

test('back-pressure: known unicast into a half-full egress queue names that port; whenDrained fires once it drains to a quarter', async () => {
  const { sb, pa, pb, pc } = setup();
  pb.input(ethFrame(A, B)); // learn B on vif2.0
  sb.accept = false;
  const cap = 256; // DEFAULT_QUEUE_FRAMES
  for (let i = 0; i < cap / 2 - 1; i++) {
    pa.input(ethFrame(B, A));
    assert.equal(pa.backPressure, undefined, `frame ${i}: below half`);
  }
  pa.input(ethFrame(B, A));
  assert.equal(pa.backPressure, pb, 'half full: the sender is told');
  assert.equal(pb.congested, true);
  pa.input(ethFrame(BCAST, A));
  assert.equal(pa.backPressure, undefined, 'flooding never asks a sender to hold off');
  pc.input(ethFrame(B, C));
  assert.equal(pc.backPressure, pb, 'any sender to the congested port is told');
  let drained = 0;
  pb.whenDrained(() => drained++);
  sb.accept = true;
  pb.wake();
  assert.equal(drained, 1);
  assert.equal(pb.congested, false);
  assert.equal(sb.frames.length, cap / 2 + 2, 'every queued frame was delivered, none dropped');
  pb.whenDrained(() => drained++); // not congested: called soon, once
  await new Promise((r) => setImmediate(r));
  assert.equal(drained, 2);
});

test('back-pressure: a port that leaves the bridge releases the senders waiting for it', () => {
  const { sb, pa, pb, br } = setup();
  pb.input(ethFrame(A, B));
  sb.accept = false;
  for (let i = 0; i < 200; i++) pa.input(ethFrame(B, A));
  let released = 0;
  pb.whenDrained(() => released++);
  br.removePort(pb);
  assert.equal(released, 1);
});

test('back-pressure: a drain waiter withdrawn with its cancel is not called when the port drains', () => {
  const { sb, pa, pb } = setup();
  pb.input(ethFrame(A, B));
  sb.accept = false;
  for (let i = 0; i < 200; i++) pa.input(ethFrame(B, A));
  let kept = 0;
  let withdrawn = 0;
  pb.whenDrained(() => kept++);
  for (let i = 0; i < 3; i++) pb.whenDrained(() => withdrawn++)();
  sb.accept = true;
  pb.wake();
  assert.deepEqual([kept, withdrawn], [1, 0]);
});
