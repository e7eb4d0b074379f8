/** xl's output formats, byte for byte (tools/xl/xl_info.c, xl_block.c, xl_nic.c). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBlockList, formatNetworkList } from './devices.js';
import { formatList } from './domain.js';

test('xl list: header with TABs, %-40s %5d %5lu %5d, six state letters, %8.1f', () => {
  const out = formatList([
    { name: 'Domain-0', domid: 0, memMiB: 750, vcpus: 4, state: 'r-----', cpuSeconds: 11794.3 },
    { name: 'linux', domid: 2, memMiB: 2048, vcpus: 2, state: '-b----', cpuSeconds: 5624.24 },
  ]);
  assert.equal(
    out,
    'Name                                        ID   Mem VCPUs\tState\tTime(s)\n' +
      'Domain-0                                     0   750     4     r-----   11794.3\n' +
      'linux                                        2  2048     2     -b----    5624.2\n',
  );
});

test('xl block-list: %-5s %-3s %-6s %-5s %-6s %-8s %-30s', () => {
  const out = formatBlockList([{ vdev: 51712, be: 0, handle: 51712, state: 4, evtch: 3, ringRef: 8, bePath: '/local/domain/0/backend/vbd/1/51712' }]);
  assert.equal(
    out,
    'Vdev  BE  handle state evt-ch ring-ref BE-path                       \n' +
      '51712 0   51712  4     3      8        /local/domain/0/backend/vbd/1/51712\n',
  );
});

test('xl network-list: Idx BE Mac Addr. handle state evt-ch tx-/rx-ring-ref BE-path', () => {
  const out = formatNetworkList([{ idx: 0, be: 0, mac: '00:16:3e:7d:73:8c', handle: 0, state: 4, evtch: 7, txRef: 12, rxRef: 13, bePath: '/local/domain/0/backend/vif/1/0' }]);
  assert.equal(
    out,
    'Idx BE Mac Addr.         handle state evt-ch   tx-/rx-ring-ref BE-path                       \n' +
      '0   0  00:16:3e:7d:73:8c     0     4      7    12/13          /local/domain/0/backend/vif/1/0\n',
  );
});
