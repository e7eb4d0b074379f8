/**
 * Where views lie in machine memory, remembered per slot: `at(slot, view)` is the view's byte
 * address in machine memory, or -1 when it is not a view of it, worked out once per view a slot
 * sees. A typed array's `buffer` and `byteOffset` getters cost 15-25 ns each on Node 20, as
 * much as the memmove they guard, and the hot copies meet the same views again and again
 * (netback stages the same batch pages in the same slots, a receiver copies into one buffer).
 * Sound because a view's buffer and offset never change: machine memory is never resized or
 * detached. A slot keeps its last view alive until another replaces it.
 */
import type { MachineMemory } from './machine.js';

export class ViewAddresses {
  private readonly views: (Uint8Array | undefined)[];
  private readonly addrs: Float64Array;
  private readonly mask: number;

  /** `slots`: a power of two. */
  constructor(private readonly machine: MachineMemory, slots: number) {
    this.mask = slots - 1;
    this.views = new Array<Uint8Array | undefined>(slots).fill(undefined);
    this.addrs = new Float64Array(slots);
  }

  at(slot: number, view: Uint8Array): number {
    const i = slot & this.mask;
    if (this.views[i] === view) return this.addrs[i]!;
    const a = this.machine.holds(view) ? view.byteOffset : -1;
    this.views[i] = view;
    this.addrs[i] = a;
    return a;
  }
}
