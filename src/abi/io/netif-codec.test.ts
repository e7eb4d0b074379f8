import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeNetifExtraInfo,
  decodeNetifRxRequest,
  decodeNetifRxResponse,
  decodeNetifTxRequest,
  decodeNetifTxResponse,
  decodeXenNetifCtrlRequest,
  encodeNetifExtraInfo,
  encodeNetifRxRequest,
  encodeNetifRxResponse,
  encodeNetifTxRequest,
  encodeNetifTxResponse,
  encodeXenNetifCtrlRequest,
  toeplitzHash,
} from './netif-codec.js';
import { NETTXF_extra_info, NETTXF_more_data, XEN_NETIF_GSO_TYPE_TCPV4, XEN_NETIF_EXTRA_FLAG_MORE } from './netif.js';

const fromHex = (h: string): Uint8Array => Uint8Array.from(h.replace(/\s+/g, '').match(/../g)!.map((b) => parseInt(b, 16)));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function slot(n: number): { b: Uint8Array; v: DataView } {
  const b = new Uint8Array(n);
  return { b, v: new DataView(b.buffer) };
}

test('netif: tx request golden bytes and round trip', () => {
  const { b, v } = slot(12);
  const req = { gref: 0x01020304, offset: 0x10, flags: NETTXF_more_data | NETTXF_extra_info, id: 0x0102, size: 1514 };
  encodeNetifTxRequest(v, 0, req);
  assert.equal(toHex(b), '04030201' + '1000' + '0c00' + '0201' + 'ea05');
  assert.deepEqual(decodeNetifTxRequest(v, 0), req);
});

test('netif: responses keep their sign (status is int16)', () => {
  const tx = slot(4);
  encodeNetifTxResponse(tx.v, 0, { id: 9, status: -2 });
  assert.equal(toHex(tx.b), '0900feff');
  assert.deepEqual(decodeNetifTxResponse(tx.v, 0), { id: 9, status: -2 });
  const rx = slot(8);
  encodeNetifRxResponse(rx.v, 0, { id: 1, offset: 0, flags: 4, status: 1500 });
  assert.equal(toHex(rx.b), '010000000400dc05');
  assert.deepEqual(decodeNetifRxResponse(rx.v, 0), { id: 1, offset: 0, flags: 4, status: 1500 });
});

test('netif: rx request zeroes its pad', () => {
  const { b, v } = slot(8);
  b.fill(0xee);
  encodeNetifRxRequest(v, 0, { id: 3, gref: 0x100 });
  assert.equal(toHex(b), '0300000000010000');
  assert.deepEqual(decodeNetifRxRequest(v, 0), { id: 3, gref: 0x100 });
});

test('netif: extra info gso / mcast / hash / unknown', () => {
  const { b, v } = slot(8);
  const gso = { kind: 'gso', flags: XEN_NETIF_EXTRA_FLAG_MORE, size: 1448, type: XEN_NETIF_GSO_TYPE_TCPV4, features: 0 } as const;
  encodeNetifExtraInfo(v, 0, gso);
  assert.equal(toHex(b), '0101a805' + '0100' + '0000');
  assert.deepEqual(decodeNetifExtraInfo(v, 0), gso);

  const mcast = { kind: 'mcast_del', flags: 0, addr: fromHex('01005e0000fb') } as const;
  encodeNetifExtraInfo(v, 0, mcast);
  assert.equal(toHex(b), '030001005e0000fb');
  const back = decodeNetifExtraInfo(v, 0);
  assert.deepEqual(back, mcast);
  // The decoded address is a copy: the peer rewriting the slot cannot change it.
  b[2] = 0xff;
  assert.equal(back.kind === 'mcast_del' && back.addr[0], 0x01);

  const hash = { kind: 'hash', flags: 0, type: 2, algorithm: 1, value: 0xdeadbeef } as const;
  encodeNetifExtraInfo(v, 0, hash);
  assert.equal(toHex(b), '04000201efbeadde');
  assert.deepEqual(decodeNetifExtraInfo(v, 0), hash);

  b.set(fromHex('0900aabbccddeeff'));
  assert.deepEqual(decodeNetifExtraInfo(v, 0), { kind: 'unknown', type: 9, flags: 0, raw: fromHex('aabbccddeeff') });
});

test('netif: ctrl request round trip', () => {
  const { b, v } = slot(16);
  const r = { id: 2, type: 6, data: [0x10, 0, 8] as [number, number, number] };
  encodeXenNetifCtrlRequest(v, 0, r);
  assert.equal(toHex(b), '02000600' + '10000000' + '00000000' + '08000000');
  assert.deepEqual(decodeXenNetifCtrlRequest(v, 0), r);
});

// The well-known RSS verification vectors (Microsoft's "Verifying the RSS Hash Calculation"),
// with the standard 40-byte key. Input: src addr, dst addr, [src port, dst port].
const KEY = fromHex('6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa');
const vectors = [
  { src: '420995bb', dst: 'a18e6450', sport: '0aea', dport: '06e6', ipv4: 0x323e8fc2, tcp: 0x51ccc178 },
  { src: 'c75c6f02', dst: '41458c53', sport: '3796', dport: '1283', ipv4: 0xd718262a, tcp: 0xc626b0ea },
];

test('netif: Toeplitz hash matches the RSS verification vectors (IPv4, IPv4+TCP)', () => {
  for (const t of vectors) {
    assert.equal(toeplitzHash(KEY, fromHex(t.src + t.dst)), t.ipv4);
    assert.equal(toeplitzHash(KEY, fromHex(t.src + t.dst + t.sport + t.dport)), t.tcp);
  }
});

test('netif: Toeplitz with a short key treats missing key bits as zero', () => {
  assert.equal(toeplitzHash(new Uint8Array(0), fromHex('ffffffff')), 0);
  // Key 0x80 00..: only data bit 0 sees the key's single set bit, at the top of the window.
  assert.equal(toeplitzHash(Uint8Array.of(0x80), Uint8Array.of(0x80)), 0x80000000);
  assert.equal(toeplitzHash(Uint8Array.of(0x80), Uint8Array.of(0x40)), 0);
});
