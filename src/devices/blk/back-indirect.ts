/**
 * blkback's reading of indirect requests' segment lists (blkif.h BLKIF_OP_INDIRECT): the
 * indirect pages mapped, copied once into a buffer of the queue's own (the frontend may rewrite
 * them at any time, R2), released, and the copy decoded and checked (request.ts). The
 * synchronous path takes the segments as numbers in reused arrays (`check`); the asynchronous
 * one as a plan with a record per segment (`plan`). One per queue: the buffers are reused, and
 * each call is done with them before it returns.
 */
import { BLKIF_RSP_ERROR } from '../../abi/io/blkif.js';
import { errorCode } from '../../base/index.js';
import type { MappedPages, SegmentMapper } from './back-grants.js';
import { checkIndirectWords, indirectPages, planIndirect, type Plan, type RequestContext, type SegmentWords } from './request.js';

type IndirectPlan = Extract<Plan, { kind: 'indirect' }>;

export class IndirectSegments {
  private copy = new Uint8Array(0);
  private words: SegmentWords = { grefs: new Uint32Array(0), firstSect: new Uint8Array(0), lastSect: new Uint8Array(0) };
  /** The indirect pages' mapping, handed back to the mapper for the next request (a reused hold). */
  private hold: MappedPages | undefined;

  constructor(private readonly mapper: SegmentMapper) {}

  /** The segments `check` decoded last (valid until the next call). */
  get segments(): SegmentWords {
    return this.words;
  }

  /** The request's sector count with its segments in `segments`, or the reason to refuse it. */
  check(plan: IndirectPlan, ctx: RequestContext): number | string {
    const failed = this.copyPages(plan);
    if (failed !== undefined) return `indirect page: ${failed}`;
    const n = plan.nrSegments;
    if (this.words.grefs.length < n) this.words = { grefs: new Uint32Array(n), firstSect: new Uint8Array(n), lastSect: new Uint8Array(n) };
    return checkIndirectWords(plan, this.copy, this.words, ctx);
  }

  /** The request as a plan with a record per segment, or a rejection. */
  plan(plan: IndirectPlan, ctx: RequestContext): Plan {
    const failed = this.copyPages(plan);
    if (failed !== undefined) return { kind: 'reject', id: plan.id, operation: plan.operation, status: BLKIF_RSP_ERROR, why: `indirect page: ${failed}` };
    return planIndirect(plan, this.copy, ctx);
  }

  /** Copy the request's segment list into `copy`; undefined, or why its pages would not map. */
  private copyPages(plan: IndirectPlan): string | undefined {
    const bytes = plan.nrSegments * 8;
    if (this.copy.length < bytes) this.copy = new Uint8Array(bytes);
    let mapped: MappedPages;
    try {
      mapped = this.mapper.acquireRefs(plan.grefs, indirectPages(plan.nrSegments), false, this.hold);
    } catch (err) {
      return errorCode(err) ?? String(err);
    }
    this.hold = mapped;
    try {
      for (let off = 0, p = 0; off < bytes; off += 4096, p++) this.copy.set(mapped.pages[p]!.subarray(0, Math.min(4096, bytes - off)), off);
    } finally {
      mapped.release();
    }
    return undefined;
  }
}
