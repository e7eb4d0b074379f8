/** The bridge hands GSO super-frames whole only to ports that negotiated their type; others get segments. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bridge } from './bridge.js';
import { RecordingSink, ethFrame } from './test-support.js';
import { onesComplementOk, pseudoHeader, superFrame, type Spec } from './gso-test-support.js';
import type { FrameInfo } from './port.js';

const GSO_V4: FrameInfo = { csumBlank: true, dataValidated: true, gso: { type: 'tcpv4', size: 1448 } };
const spec = (payload: number, v6 = false): Spec => ({ v6, ipOptions: 0, tcpOptions: 3, seq: 0xfffff000, ipId: 7, flags: 0x18, payload: Uint8Array.from({ length: payload }, (_, i) => (i * 13) & 0xff) });

function setup() {
  const br = new Bridge('xenbr0', { clock: () => 0 });
  const sinks = { both: new RecordingSink(), none: new RecordingSink(), v6only: new RecordingSink(), tap: new RecordingSink() };
  const src = br.addPort('vif1.0', new RecordingSink());
  const ports = {
    both: br.addPort('vif2.0', sinks.both, { gso: true }),
    none: br.addPort('vif3.0', sinks.none),
    v6only: br.addPort('vif4.0', sinks.v6only, { gso: { tcpv4: false, tcpv6: true } }),
    tap: br.addPort('xpv0', sinks.tap, { csumOffload: false }),
  };
  return { br, src, sinks, ports };
}

function payloadOf(frames: { frame: Uint8Array }[], hdr: number): Buffer {
  return Buffer.concat(frames.map((f) => f.frame.subarray(hdr)));
}

test('a TCPv4 super-frame: whole to a tcpv4 GSO port, as valid MSS segments to the others', () => {
  const { br, src, sinks } = setup();
  const s = spec(30000);
  const frame = superFrame(s);
  assert.equal(src.input(frame, GSO_V4), true);
  assert.equal(sinks.both.frames.length, 1);
  assert.deepEqual(sinks.both.frames[0]!.frame, frame);
  assert.deepEqual(sinks.both.frames[0]!.info.gso, GSO_V4.gso);
  const hdr = 14 + 20 + 32;
  for (const sink of [sinks.none, sinks.v6only, sinks.tap]) {
    assert.equal(sink.frames.length, Math.ceil(30000 / 1448));
    assert.deepEqual(payloadOf(sink.frames, hdr), Buffer.from(s.payload));
    for (const { frame: f, info } of sink.frames) {
      assert.equal(info.gso, undefined);
      assert.deepEqual([info.csumBlank, info.dataValidated], [false, true]);
      assert.ok(f.length <= 1514);
      assert.ok(onesComplementOk([...pseudoHeader(f, false, f.length - 34), ...f.subarray(34)]), 'TCP checksum complete');
    }
  }
  assert.equal(br.counters.gsoSegmented, 3, 'once per port that needed it');
});

test('a TCPv6 super-frame passes whole to a tcpv6-only port', () => {
  const { src, sinks } = setup();
  const frame = superFrame(spec(5000, true));
  src.input(frame, { csumBlank: true, dataValidated: true, gso: { type: 'tcpv6', size: 1000 } });
  assert.equal(sinks.v6only.frames.length, 1);
  assert.equal(sinks.none.frames.length, 5);
  for (const { frame: f } of sinks.none.frames) assert.ok(onesComplementOk([...pseudoHeader(f, true, f.length - 54), ...f.subarray(54)]));
});

test('a GSO frame that is not TCP of its type: plain if it fits the MTU, else dropped as too big; counted', () => {
  const { br, src, sinks, ports } = setup();
  src.input(ethFrame('00:16:3e:00:00:02', '00:16:3e:00:00:01', 0x0800, 400), GSO_V4);
  src.input(ethFrame('00:16:3e:00:00:02', '00:16:3e:00:00:01', 0x0800, 9000), GSO_V4);
  assert.equal(br.counters.gsoRefused, 6, 'two frames, three ports each');
  assert.equal(sinks.none.frames.length, 1);
  assert.equal(sinks.none.frames[0]!.info.gso, undefined);
  assert.equal(ports.none.stats().txTooBig, 1);
  assert.equal(sinks.both.frames.length, 2, 'the GSO port takes both as they are');
});

test('segments beyond the receiver MTU are dropped as too big, not truncated', () => {
  const br = new Bridge('xenbr0', { clock: () => 0 });
  const small = new RecordingSink();
  const src = br.addPort('vif1.0', new RecordingSink());
  const p = br.addPort('vif2.0', small, { mtu: 576 });
  src.input(superFrame(spec(4000)), GSO_V4);
  assert.equal(small.frames.length, 0);
  assert.equal(p.stats().txTooBig, 3);
});

test('a refused GSO frame its sender reuses (owned false) is copied, not kept as its buffer', () => {
  const { src, sinks, ports } = setup();
  ports.none.input(ethFrame('00:16:3e:00:00:01', '00:16:3e:00:00:03'), { csumBlank: false, dataValidated: false }); // learn vif3.0's MAC
  const buf = ethFrame('00:16:3e:00:00:03', '00:16:3e:00:00:01', 0x0800, 400);
  const sent = buf.slice();
  src.input(buf, GSO_V4, false);
  buf.fill(0xee); // the sender's buffer, reused for its next frame
  assert.equal(sinks.none.frames.length, 1);
  assert.deepEqual(sinks.none.frames[0]!.frame, sent);
});
