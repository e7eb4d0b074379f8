/**
 * The in-process `sim` platform: the hypervisor model (host side), the per-thread platform
 * any thread builds from a handle, the round-trip measurement, and test support.
 *
 * Quick start:
 *   const hv = new Hypervisor({ vcpuEntry: GUEST_KERNEL_URL });   // dom0 = this thread
 *   const d = hv.createDomain({ memoryPages: 1024, kernel: 'builtin:idle' });
 *   hv.dom0.grants.map(d, [ref], true);                             // dom0's Platform
 *   new Worker(url, { workerData: hv.platformHandle(0) });          // a dom0 backend thread:
 *   //   there: const platform = SimPlatform.attach(workerData);     // its own Platform
 *   hv.startInfo(d);   // xenstore/console frames (granted at refs 1/0) and unbound ports
 *   await hv.destroy(d);
 * Events are delivered on the binding thread's event loop (from the first bind), or by
 * `platform.poll(ms)` in a blocking loop. Tests wrap their body in `withHypervisor` (testing.ts)
 * to fail on any leaked mapping, grant, port, domain or frame.
 */
export { Hypervisor, type DomainConfig, type DomainInfo, type DomainRunState, type HypervisorOptions } from './hypervisor.js';
export { SimPlatform, shutdownDomain, type PlatformHandle } from './platform.js';
export { DEFAULT_LIMITS, type DomainLimits } from './build.js';
export type { StartInfo } from './start-info.js';
export type { GuestMessage, VcpuBoot } from './vcpu-protocol.js';
export { measureEvtchnRoundTrip, measureRawPingPong, type RoundTripOptions, type RoundTripResult } from './roundtrip.js';
