/**
 * The getdomaininfolist layouts against gcc and Debian's Xen headers (/usr/include/xen): every
 * offset, size and constant of domaininfo.ts, and a C-initialised entry decoded by ours.
 * Skipped (loudly) where gcc or the headers are missing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SHUTDOWN_crash } from '../../abi/xen.js';
import {
  decodeDomainInfo,
  decodeDomainInfoList,
  DOMAININFO_OFF,
  DOMAININFO_SIZE,
  DOMINF_DYING,
  DOMINF_SHUTDOWN,
  DOMINF_SHUTDOWN_MASK,
  DOMINF_SHUTDOWN_SHIFT,
  encodeDomainInfoListRequest,
  HYPERVISOR_SYSCTL,
  SYSCTL_GETDOMAININFOLIST,
  SYSCTL_INTERFACE_VERSION,
  SYSCTL_OFF,
  SYSCTL_SIZE,
} from './domaininfo.js';

const haveC = existsSync('/usr/include/xen/domctl.h') && existsSync('/usr/bin/gcc');

const C_VALUES: Record<string, string> = {
  sysctlSize: 'sizeof(struct xen_sysctl)',
  cmd: 'offsetof(struct xen_sysctl, cmd)',
  interfaceVersion: 'offsetof(struct xen_sysctl, interface_version)',
  firstDomain: 'offsetof(struct xen_sysctl, u.getdomaininfolist.first_domain)',
  maxDomains: 'offsetof(struct xen_sysctl, u.getdomaininfolist.max_domains)',
  buffer: 'offsetof(struct xen_sysctl, u.getdomaininfolist.buffer)',
  numDomains: 'offsetof(struct xen_sysctl, u.getdomaininfolist.num_domains)',
  infoSize: 'sizeof(struct xen_domctl_getdomaininfo)',
  domain: 'offsetof(struct xen_domctl_getdomaininfo, domain)',
  flags: 'offsetof(struct xen_domctl_getdomaininfo, flags)',
  totPages: 'offsetof(struct xen_domctl_getdomaininfo, tot_pages)',
  maxVcpuId: 'offsetof(struct xen_domctl_getdomaininfo, max_vcpu_id)',
  sysctlVersion: 'XEN_SYSCTL_INTERFACE_VERSION',
  getdomaininfolist: 'XEN_SYSCTL_getdomaininfolist',
  hypervisorSysctl: '__HYPERVISOR_sysctl',
  dying: 'XEN_DOMINF_dying',
  shutdown: 'XEN_DOMINF_shutdown',
  shift: 'XEN_DOMINF_shutdownshift',
  mask: 'XEN_DOMINF_shutdownmask',
  crash: 'SHUTDOWN_crash',
};

/** Compile and run a program printing every value, and one C-initialised entry in hex. */
function fromGcc(): { values: Record<string, number>; sample: Uint8Array } {
  const dir = mkdtempSync(join(tmpdir(), 'xenpv-domaininfo-'));
  try {
    const lines = Object.entries(C_VALUES).map(([k, e]) => `  printf("${k} %lld\\n", (long long)(${e}));`);
    const src = [
      '#define __XEN_TOOLS__ 1',
      '#include <stdio.h>',
      '#include <stddef.h>',
      '#include <stdint.h>',
      '#include <string.h>',
      '#include <xen/xen.h>',
      '#include <xen/sched.h>',
      '#include <xen/domctl.h>',
      '#include <xen/sysctl.h>',
      'int main(void) {',
      ...lines,
      '  struct xen_domctl_getdomaininfo e; memset(&e, 0xa5, sizeof e);',
      '  e.domain = 7; e.flags = XEN_DOMINF_shutdown | XEN_DOMINF_dying | (SHUTDOWN_crash << XEN_DOMINF_shutdownshift);',
      '  printf("sample ");',
      '  for (size_t i = 0; i < sizeof e; i++) printf("%02x", ((unsigned char *)&e)[i]);',
      '  printf("\\n");',
      '  return 0;',
      '}',
    ].join('\n');
    writeFileSync(join(dir, 'v.c'), src);
    execFileSync('gcc', ['-m64', '-o', join(dir, 'v'), join(dir, 'v.c')], { stdio: 'pipe' });
    const out = execFileSync(join(dir, 'v'), { encoding: 'utf8' });
    const values: Record<string, number> = {};
    let sample = new Uint8Array(0);
    for (const line of out.trim().split('\n')) {
      const [k, v] = line.split(' ') as [string, string];
      if (k === 'sample') sample = Uint8Array.from(v.match(/../g)!.map((h) => parseInt(h, 16)));
      else values[k] = Number(v);
    }
    return { values, sample };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('getdomaininfolist layouts and constants match Xen 4.17 headers (gcc)', { skip: haveC ? false : 'no gcc or /usr/include/xen' }, () => {
  const { values, sample } = fromGcc();
  const ours: Record<string, number> = {
    sysctlSize: SYSCTL_SIZE,
    ...SYSCTL_OFF,
    infoSize: DOMAININFO_SIZE,
    ...DOMAININFO_OFF,
    sysctlVersion: SYSCTL_INTERFACE_VERSION,
    getdomaininfolist: SYSCTL_GETDOMAININFOLIST,
    hypervisorSysctl: HYPERVISOR_SYSCTL,
    dying: DOMINF_DYING,
    shutdown: DOMINF_SHUTDOWN,
    shift: DOMINF_SHUTDOWN_SHIFT,
    mask: DOMINF_SHUTDOWN_MASK,
    crash: SHUTDOWN_crash,
  };
  assert.deepEqual(ours, values);
  assert.equal(sample.length, DOMAININFO_SIZE);
  assert.deepEqual(decodeDomainInfo(sample), { domid: 7, dying: true, shutdown: true, shutdownReason: SHUTDOWN_crash });
});

test('a request names the buffer; the reply count is bounded by the request and the buffer', () => {
  const req = new Uint8Array(SYSCTL_SIZE).fill(0xff);
  encodeDomainInfoListRequest(req, 0, 2, 0x1234_5678_9abcn);
  const dv = new DataView(req.buffer);
  assert.equal(dv.getUint32(SYSCTL_OFF.cmd, true), SYSCTL_GETDOMAININFOLIST);
  assert.equal(dv.getUint16(SYSCTL_OFF.firstDomain, true), 0);
  assert.equal(dv.getUint32(SYSCTL_OFF.maxDomains, true), 2);
  assert.equal(dv.getBigUint64(SYSCTL_OFF.buffer, true), 0x1234_5678_9abcn);
  assert.equal(dv.getUint32(SYSCTL_OFF.numDomains, true), 0);
  const entries = new Uint8Array(3 * DOMAININFO_SIZE);
  const edv = new DataView(entries.buffer);
  [0, 3, 9].forEach((id, i) => edv.setUint16(i * DOMAININFO_SIZE, id, true));
  edv.setUint32(DOMAININFO_SIZE + DOMAININFO_OFF.flags, DOMINF_SHUTDOWN, true);
  // A hostile or confused answer (num_domains 1000) reads no more than asked (2).
  dv.setUint32(SYSCTL_OFF.numDomains, 1000, true);
  const got = decodeDomainInfoList(req, entries, 2);
  assert.deepEqual(got.map((d) => [d.domid, d.shutdown, d.dying]), [[0, false, false], [3, true, false]]);
  dv.setUint32(SYSCTL_OFF.numDomains, 1000, true);
  assert.equal(decodeDomainInfoList(req, entries.subarray(0, DOMAININFO_SIZE + 5), 50).length, 1);
});
