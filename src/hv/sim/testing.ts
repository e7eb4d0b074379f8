/**
 * Test support: a hypervisor per test that is torn down and checked for leaks afterwards
 * (STYLE.md habit 8). `withHypervisor` fails the test if a grant mapping, grant, port or
 * domain is left behind, or if the model's own accounting (pins, maptrack, listeners,
 * frames) does not return to a clean dom0.
 */
import { assertNoLeaks } from '../../base/index.js';
import { L_OWNER, LISTENER_WORDS, MAX_LISTENERS, NR_PORTS, PORT_WORDS, STATE_RESERVED } from '../../evtchn/index.js';
import { DomainState, DW } from '../../memory/index.js';
import { Hypervisor, type HypervisorOptions } from './hypervisor.js';
import { pollUntil } from '../../base/testing.js';

export async function withHypervisor<T>(
  fn: (hv: Hypervisor) => Promise<T> | T,
  options: HypervisorOptions = {},
): Promise<T> {
  const hv = new Hypervisor({ maxMachineBytes: 256 * 2 ** 20, dom0Pages: 256, ...options });
  const framesAtStart = hv.framesInUse;
  let result: T;
  try {
    result = await fn(hv);
  } finally {
    await hv.dispose();
  }
  assertNoLeaks(['grant-mapping', 'grant-access', 'evtchn-port', 'domain']);
  assertHvClean(hv, framesAtStart);
  return result;
}

/** The model's own view: only dom0 left, nothing pinned, mapped, bound or listening. */
export function assertHvClean(hv: Hypervisor, dom0Frames: number): void {
  const t = hv.table;
  const problems: string[] = [];
  for (let d = 1; d < t.maxDomains; d++) {
    if (t.get(d, DW.STATE) !== DomainState.FREE) problems.push(`dom${d} still in state ${t.get(d, DW.STATE)}`);
  }
  for (const f of ['FOREIGN_PINS', 'MAPTRACK_USED', 'REFS', 'GNT_LOCK', 'EVT_LOCK'] as const) {
    const v = t.get(0, DW[f]);
    if (v !== 0) problems.push(`dom0 ${f} = ${v}`);
  }
  const ports = t.machine.words(t.get(0, DW.R_PORTS), (NR_PORTS * PORT_WORDS * 4) / 4096);
  for (let p = 1; p < NR_PORTS; p++) {
    const s = Atomics.load(ports, p * PORT_WORDS) & 0xf;
    if (s !== 0 && s !== STATE_RESERVED) problems.push(`dom0 port ${p} open (state ${s})`);
  }
  const listeners = t.machine.words(t.get(0, DW.R_LISTENERS), 1);
  for (let l = 0; l < MAX_LISTENERS; l++) {
    if (Atomics.load(listeners, l * LISTENER_WORDS + L_OWNER) !== 0) problems.push(`dom0 listener ${l} still claimed`);
  }
  if (hv.framesInUse !== dom0Frames) problems.push(`${hv.framesInUse - dom0Frames} machine frames not reclaimed`);
  if (problems.length > 0) throw new Error(`hypervisor not clean:\n  ${problems.slice(0, 20).join('\n  ')}`);
}

/**
 * Wait until `cond()` holds, checking every 5 ms, for at most `timeoutMs` (generous: worker
 * start-up takes a second or more on this shared 2-core machine). Returns whether it held.
 */
export function eventually(cond: () => boolean, timeoutMs = 10000): Promise<boolean> {
  return pollUntil(cond, timeoutMs);
}
