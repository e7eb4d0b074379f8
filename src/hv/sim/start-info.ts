/**
 * What the domain builder hands a new PV guest (a reduced `start_info`): the frames of its
 * xenstore and console rings, pre-granted to dom0 at GNTTAB_RESERVED_XENSTORE and
 * GNTTAB_RESERVED_CONSOLE, and the unbound ports (remote dom0) that go with them.
 */
import { DW, MACHINE_PAGE_SIZE, type DomainTable } from '../../memory/index.js';

export interface StartInfo {
  readonly storeFrame: number;
  readonly storePort: number;
  readonly consoleFrame: number;
  readonly consolePort: number;
}

const SI_VALID = 0;
const SI_STORE_FRAME = 1;
const SI_STORE_PORT = 2;
const SI_CONSOLE_FRAME = 3;
const SI_CONSOLE_PORT = 4;

function words(table: DomainTable, domid: number): Int32Array {
  return new Int32Array(table.machine.sab, table.get(domid, DW.R_START_INFO) * MACHINE_PAGE_SIZE, 8);
}

export function writeStartInfo(table: DomainTable, domid: number, info: StartInfo): void {
  const w = words(table, domid);
  Atomics.store(w, SI_STORE_FRAME, info.storeFrame);
  Atomics.store(w, SI_STORE_PORT, info.storePort);
  Atomics.store(w, SI_CONSOLE_FRAME, info.consoleFrame);
  Atomics.store(w, SI_CONSOLE_PORT, info.consolePort);
  Atomics.store(w, SI_VALID, 1);
}

export function readStartInfo(table: DomainTable, domid: number): StartInfo | undefined {
  const w = words(table, domid);
  if (Atomics.load(w, SI_VALID) !== 1) return undefined;
  return {
    storeFrame: Atomics.load(w, SI_STORE_FRAME),
    storePort: Atomics.load(w, SI_STORE_PORT),
    consoleFrame: Atomics.load(w, SI_CONSOLE_FRAME),
    consolePort: Atomics.load(w, SI_CONSOLE_PORT),
  };
}
