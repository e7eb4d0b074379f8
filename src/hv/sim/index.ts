/**
 * The in-process `sim` platform: the hypervisor model (host side), the per-thread platform
 * any thread builds from a handle, the round-trip measurement, and test support.
 */
export { Hypervisor, type DomainConfig, type DomainInfo, type DomainRunState, type HypervisorOptions } from './hypervisor.js';
export { SimPlatform, shutdownDomain, type PlatformHandle } from './platform.js';
export { DEFAULT_LIMITS, type DomainLimits } from './build.js';
export type { StartInfo } from './start-info.js';
export type { GuestMessage, VcpuBoot } from './vcpu-protocol.js';
export { measureEvtchnRoundTrip, measureRawPingPong, type RoundTripOptions, type RoundTripResult } from './roundtrip.js';
