/**
 * Where views lie in machine memory, remembered per slot: `at(slot, view)` is the view's byte
 * address in machine memory, or -1 when it is not a view of it, worked out once per view a slot
 * sees. A typed array's `buffer` and `byteOffset` getters cost 15-25 ns each on Node 20, as
 * much as the memmove they guard, and the hot copies meet the same views again and again
 * (netback stages the same batch pages in the same slots, a receiver copies into one buffer).
 * Sound because a view's buffer and offset never change: machine memory is never resized or
 * detached. A slot keeps its last view alive until another replaces it.
 *
 * A view a slot has not seen is looked up on the view itself: the address is kept as a
 * non-enumerable property under a key of this machine memory object, so a copy that meets many
 * views in turn (a sender's 256 tx pages, a receiver's rx pages) pays the getters once per view,
 * not once per copy.
 */
import type { MachineMemory } from './machine.js';

/** One property key per MachineMemory object: an address is only true of the memory it was worked out for. */
const keys = new WeakMap<MachineMemory, symbol>();

function keyOf(machine: MachineMemory): symbol {
  let key = keys.get(machine);
  if (key === undefined) keys.set(machine, (key = Symbol('machine address')));
  return key;
}

export class ViewAddresses {
  private readonly views: (Uint8Array | undefined)[];
  private readonly addrs: Float64Array;
  private readonly mask: number;
  private readonly key: symbol;

  /** `slots`: a power of two. */
  constructor(private readonly machine: MachineMemory, slots: number) {
    this.mask = slots - 1;
    this.key = keyOf(machine);
    this.views = new Array<Uint8Array | undefined>(slots).fill(undefined);
    this.addrs = new Float64Array(slots);
  }

  at(slot: number, view: Uint8Array): number {
    const i = slot & this.mask;
    if (this.views[i] === view) return this.addrs[i]!;
    let a = (view as unknown as Record<symbol, number | undefined>)[this.key];
    if (a === undefined) {
      a = this.machine.holds(view) ? view.byteOffset : -1;
      if (Object.isExtensible(view)) Object.defineProperty(view, this.key, { value: a });
    }
    this.views[i] = view;
    this.addrs[i] = a;
    return a;
  }
}
