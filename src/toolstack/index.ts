/**
 * The toolstack (libxl's part of xenpv): configuration, domains, and the host.
 *
 * In process (`xenpv demo`, tests) — no daemon:
 *   const host = await Host.start({ runDir, storeSocket: false });   // hv + xenstored + consoles + bridges
 *   const cfg = await loadDomainConfig('examples/pv-guest.cfg', { overrides: ['memory=16'] });
 *   const d = await host.create(cfg, { paused: false, baseDir });     // Domain: domid, disks, nics
 *   host.list();                      // DomainRow[]: xl list's columns (name, domid, memMiB, vcpus, state, cpuSeconds)
 *   await host.shutdown('name', 'poweroff', 5000);  // control/shutdown; waits until handled
 *   await host.devices.blockAttach('name', ['format=raw,vdev=xvdb,access=rw,target=/x.img']);
 *   await host.devices.blockDetach('name', 'xvdb'); host.devices.blockList('name');
 *   await host.devices.networkAttach('name', ['bridge=xenbr0']); networkDetach('name', '1' | mac)
 *   host.devices.stats(d);            // virsh domstats block.N.* / net.N.* keys
 *   host.consoleAttach('name');       // Duplex: the guest's console 0
 *   host.hv, host.store, host.bridges // the hypervisor model, dom0's store client, the bridges
 *   await host.destroy('name'); await host.close();
 * As a daemon: runHost(runDir) (daemon.ts) behind a JSON-lines control socket (rpc-server.ts);
 * the CLI uses HostClient / callHost (rpc-client.ts). Run dir: paths.ts.
 */
export * from './config/index.js';
export { Host, actionFor, type HostOptions, type ShutdownRequest } from './host/host.js';
export { HostClient, callHost } from './host/rpc-client.js';
export { runHost } from './host/daemon.js';
export { parseUplinkSpec, formatUplinks, type UplinkSpec, type UplinkRow } from './host/uplinks.js';
export { runDir, controlSocket, pidFile, logFile, storeSocket } from './host/paths.js';
export { accounting, type DomainRow, type HostAccounting, type HostInfo } from './host/views.js';
export type { VcpuRow } from './host/vcpus.js';
export type { BlockRow, NicRow } from './host/host-devices.js';
export type { Domain, CreateOptions } from './domain/domain.js';
export type { BlkBackFeatureOptions } from './domain/disk-thread.js';
