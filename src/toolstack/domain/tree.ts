/**
 * A domain's own xenstore nodes as libxl writes them at creation (libxl_create.c
 * `libxl__domain_make`, libxl_dom.c `libxl__build_post`; ecosystem.md §1.8):
 *
 *   /local/domain/<d>                 [n0, r<d>]  home; the rw subdirs owned by the guest
 *     domid, name, vm = /vm/<uuid>
 *     memory/static-max, memory/target, memory/videoram   (KiB)
 *     cpu/<n>/availability = online|offline
 *     store/port, store/ring-ref                           (deprecated copies of start info)
 *     console/...                                         (console 0, ConsoleDaemon's keys)
 *     control/shutdown                                    [n<d>] (inside the rw control/)
 *   /vm/<uuid>                        [n0, r<d>]  uuid, name, start_time
 *   /libxl/<d>                        [n0]        type, dm-version (toolstack-private)
 *
 * Removal (destroy) takes all three subtrees away.
 */
import type { XsClient } from '../../xenstore/client/index.js';
import { errorCode } from '../../base/index.js';
import { writePrimaryConsole } from '../../devices/console/index.js';
import { prepareDomainHome } from '../../xenbus/index.js';
import type { StartInfo } from '../../hv/sim/start-info.js';

export interface TreeSpec {
  readonly domid: number;
  readonly name: string;
  readonly uuid: string;
  readonly type: string;
  readonly memoryKiB: number;
  readonly maxmemKiB: number;
  readonly vcpus: number;
  readonly maxvcpus: number;
  readonly startInfo: StartInfo;
}

export async function writeDomainTree(store: XsClient, t: TreeSpec): Promise<void> {
  await prepareDomainHome(store, t.domid, t.name);
  const home = `/local/domain/${t.domid}`;
  const vm = `/vm/${t.uuid}`;
  const readable = [{ access: 'n' as const, domid: 0 }, { access: 'r' as const, domid: t.domid }];
  await store.withTransaction(async (tx) => {
    await tx.write(`${home}/vm`, vm);
    await tx.write(`${home}/memory/static-max`, String(t.maxmemKiB));
    await tx.write(`${home}/memory/target`, String(t.memoryKiB));
    await tx.write(`${home}/memory/videoram`, '-1');
    for (let c = 0; c < t.maxvcpus; c++) await tx.write(`${home}/cpu/${c}/availability`, c < t.vcpus ? 'online' : 'offline');
    await tx.write(`${home}/store/port`, String(t.startInfo.storePort));
    await tx.write(`${home}/store/ring-ref`, String(t.startInfo.storeFrame));
    await tx.write(`${home}/control/shutdown`, '');
    await tx.setPerms(`${home}/control/shutdown`, [{ access: 'n', domid: t.domid }]);
    await tx.mkdir(vm);
    await tx.setPerms(vm, readable);
    await tx.write(`${vm}/uuid`, t.uuid);
    await tx.write(`${vm}/name`, t.name);
    await tx.write(`${vm}/start_time`, (Date.now() / 1000).toFixed(2));
    await tx.write(`/libxl/${t.domid}/type`, t.type);
    await tx.write(`/libxl/${t.domid}/dm-version`, 'qemu_xen');
  });
  await writePrimaryConsole(store, t.domid, { frame: t.startInfo.consoleFrame, port: t.startInfo.consolePort });
}

async function rmQuiet(store: XsClient, path: string): Promise<void> {
  await store.rm(path).catch((err: unknown) => {
    if (errorCode(err) !== 'ENOENT') throw err;
  });
}

/** libxl__destroy_domid's xenstore part: the home, the vm dir, libxl's record, the backends. */
export async function removeDomainTree(store: XsClient, domid: number, uuid: string): Promise<void> {
  await rmQuiet(store, `/local/domain/${domid}`);
  await rmQuiet(store, `/vm/${uuid}`);
  await rmQuiet(store, `/libxl/${domid}`);
  for (const cls of ['vbd', 'vif', 'console']) await rmQuiet(store, `/local/domain/0/backend/${cls}/${domid}`);
}
