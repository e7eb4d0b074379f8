/**
 * Properties of the request/response ring against a reference model of ring.h, with every
 * free-running index starting near the 2^32 wrap. The model is written independently
 * (modular arithmetic on plain numbers, its own FIFO of ids).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BackRing } from './back.js';
import { FrontRing } from './front.js';
import { PagedMemory } from './memory.js';
import { SRING_REQ_PROD, SRING_RSP_PROD } from './sring.js';
import { initRingAt, scatteredPages, testCodec, type TestRequest, type TestResponse } from './test-support.js';

const M = 2 ** 32;
const mod = (x: number): number => ((x % M) + M) % M;

/** ring.h, literally: shared fields, both ends' private indices, and the ids in flight. */
class Model {
  reqProd: number;
  reqEvent: number;
  rspProd: number;
  rspEvent: number;
  reqProdPvt: number;
  rspCons: number;
  reqCons: number;
  rspProdPvt: number;
  nextId = 0;
  backAsleep = false;
  frontAsleep = false;

  constructor(
    readonly size: number,
    start: number,
  ) {
    this.reqProd = this.rspProd = this.reqProdPvt = this.rspCons = this.reqCons = this.rspProdPvt = start;
    this.reqEvent = this.rspEvent = mod(start + 1);
  }

  put(k: number): number {
    const n = Math.min(k, this.size - mod(this.reqProdPvt - this.rspCons));
    this.reqProdPvt = mod(this.reqProdPvt + n);
    return n;
  }
  pushReq(): boolean {
    const [old, now] = [this.reqProd, this.reqProdPvt];
    this.reqProd = now;
    return mod(now - this.reqEvent) < mod(now - old);
  }
  take(k: number): number {
    const n = Math.min(k, mod(this.reqProd - this.reqCons), this.size - mod(this.reqCons - this.rspProdPvt));
    this.reqCons = mod(this.reqCons + n);
    return n;
  }
  respond(k: number): number {
    const n = Math.min(k, mod(this.reqCons - this.rspProdPvt));
    this.rspProdPvt = mod(this.rspProdPvt + n);
    return n;
  }
  pushRsp(): boolean {
    const [old, now] = [this.rspProd, this.rspProdPvt];
    this.rspProd = now;
    return mod(now - this.rspEvent) < mod(now - old);
  }
  collect(k: number): number {
    const n = Math.min(k, mod(this.rspProd - this.rspCons));
    this.rspCons = mod(this.rspCons + n);
    return n;
  }
  finalReq(): boolean {
    const unconsumed = (): number => Math.min(mod(this.reqProd - this.reqCons), this.size - mod(this.reqCons - this.rspProdPvt));
    if (unconsumed() > 0) return true;
    this.reqEvent = mod(this.reqCons + 1);
    return unconsumed() > 0;
  }
  finalRsp(): boolean {
    if (mod(this.rspProd - this.rspCons) > 0) return true;
    this.rspEvent = mod(this.rspCons + 1);
    return mod(this.rspProd - this.rspCons) > 0;
  }
}

type Op = { op: 'put' | 'take' | 'respond' | 'collect'; k: number } | { op: 'pushReq' | 'pushRsp' | 'finalReq' | 'finalRsp' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constantFrom('put' as const, 'take' as const, 'respond' as const, 'collect' as const), k: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 40 })) }),
  fc.record({ op: fc.constantFrom('pushReq' as const, 'pushRsp' as const, 'finalReq' as const, 'finalRsp' as const) }),
);

const startArb = fc.oneof(fc.integer({ min: 0xffffff00, max: 0xffffffff }), fc.constant(0xfffffff0), fc.nat({ max: 0xffffffff }));
const geometryArb = fc.record({ entry: fc.constantFrom(8, 12, 20, 36, 64, 112), pages: fc.integer({ min: 1, max: 3 }) });

/** One run of the property: both ends on one ring, the model beside them, an op at a time. */
class Run {
  readonly mem: PagedMemory;
  readonly front: FrontRing<TestRequest, TestResponse>;
  readonly back: BackRing<TestRequest, TestResponse>;
  readonly model: Model;
  private readonly sent: number[] = []; // ids in put order
  private taken = 0; // how many of `sent` the back has read
  private answered = 0; // how many the back answered
  private collected = 0;
  private readonly takenIds: number[] = [];

  constructor(entry: number, pages: number, start: number) {
    this.mem = new PagedMemory(scatteredPages(pages));
    initRingAt(this.mem, start);
    const codec = testCodec(entry);
    this.front = FrontRing.attach(this.mem, codec, start);
    this.back = BackRing.attach(this.mem, codec, start);
    this.model = new Model(this.front.size, start);
  }

  apply(o: Op): void {
    switch (o.op) {
      case 'put':
        return this.put(o.k);
      case 'pushReq':
        return this.pushReq();
      case 'take':
        return this.take(o.k);
      case 'respond':
        return this.respond(o.k);
      case 'pushRsp':
        return this.pushRsp();
      case 'collect':
        return this.collect(o.k);
      case 'finalReq':
        return this.finalReq();
      case 'finalRsp':
        return this.finalRsp();
    }
  }

  /** After every op: the shared producers and the front's free count agree with the model. */
  checkShared(): void {
    const { mem, model } = this;
    assert.equal(mem.load32(SRING_REQ_PROD), model.reqProd);
    assert.equal(mem.load32(SRING_RSP_PROD), model.rspProd);
    assert.equal(this.front.freeRequests(), model.size - mod(model.reqProdPvt - model.rspCons));
  }

  private put(k: number): void {
    const n = this.model.put(k);
    for (let i = 0; i < n; i++) {
      const id = this.model.nextId++;
      assert.ok(this.front.putRequest({ id, words: [id ^ 0x5a5a5a5a] }));
      this.sent.push(id);
    }
    if (n < k) assert.equal(this.front.putRequest({ id: -1 >>> 0, words: [] }), false);
  }

  private pushReq(): void {
    const model = this.model;
    const moved = model.reqProd !== model.reqProdPvt;
    const expect = model.pushReq();
    assert.equal(this.front.pushRequests(), expect);
    if (moved && model.backAsleep) assert.ok(expect, 'a sleeping back must be woken');
    if (expect) model.backAsleep = false;
  }

  private take(k: number): void {
    const model = this.model;
    model.backAsleep = false;
    assert.equal(this.back.unconsumedRequests(), Math.min(mod(model.reqProd - model.reqCons), model.size - mod(model.reqCons - model.rspProdPvt)));
    const n = model.take(k);
    for (let i = 0; i < n; i++) {
      const req = this.back.nextRequest();
      assert.ok(req);
      assert.equal(req.id, this.sent[this.taken]);
      assert.equal(req.words[0], (req.id ^ 0x5a5a5a5a) >>> 0);
      this.takenIds.push(req.id);
      this.taken++;
    }
    if (n < k) assert.equal(this.back.nextRequest(), undefined);
  }

  private respond(k: number): void {
    this.model.backAsleep = false;
    const n = this.model.respond(k);
    for (let i = 0; i < n; i++) assert.ok(this.back.putResponse({ id: this.takenIds[this.answered++]!, status: 0 }));
  }

  private pushRsp(): void {
    const model = this.model;
    const moved = model.rspProd !== model.rspProdPvt;
    const expect = model.pushRsp();
    assert.equal(this.back.pushResponses(), expect);
    if (moved && model.frontAsleep) assert.ok(expect, 'a sleeping front must be woken');
    if (expect) model.frontAsleep = false;
  }

  private collect(k: number): void {
    this.model.frontAsleep = false;
    const n = this.model.collect(k);
    for (let i = 0; i < n; i++) assert.equal(this.front.nextResponse()?.id, this.sent[this.collected++]);
    if (n < k) assert.equal(this.front.nextResponse(), undefined);
  }

  private finalReq(): void {
    const work = this.model.finalReq();
    assert.equal(this.back.finalCheckForRequests(), work);
    this.model.backAsleep = !work;
  }

  private finalRsp(): void {
    const work = this.model.finalRsp();
    assert.equal(this.front.finalCheckForResponses(), work);
    this.model.frontAsleep = !work;
  }
}

test('front/back rings match the ring.h model across the 2^32 wrap', () => {
  fc.assert(
    fc.property(geometryArb, startArb, fc.array(opArb, { minLength: 10, maxLength: 150, size: 'max' }), ({ entry, pages }, start, ops) => {
      const run = new Run(entry, pages, start);
      for (const o of ops) {
        run.apply(o);
        run.checkShared();
      }
      assert.equal(run.front.broken, undefined);
      assert.equal(run.back.broken, undefined);
    }),
    { numRuns: 400 },
  );
});

test('a bogus req_prod breaks the back exactly when ring.h says it must', () => {
  fc.assert(
    fc.property(startArb, fc.integer({ min: 0, max: 32 }), fc.integer({ min: 0, max: 32 }), fc.integer({ min: -3, max: 3 }), fc.nat({ max: 0xffffffff }), fc.boolean(),
      (start, posted, answeredRaw, nearEdge, anyValue, useEdge) => {
        const mem = new PagedMemory(scatteredPages(1));
        initRingAt(mem, start);
        const codec = testCodec(64);
        const front = FrontRing.attach(mem, codec, start);
        const back = BackRing.attach(mem, codec, start);
        for (let i = 0; i < posted; i++) front.putRequest({ id: i, words: [] });
        front.pushRequests();
        const answered = Math.min(answeredRaw, posted);
        for (let i = 0; i < posted; i++) assert.equal(back.nextRequest()?.id, i);
        for (let i = 0; i < answered; i++) back.putResponse({ id: i, status: 0 });
        back.pushResponses();
        // The back's bounds: rsp_prod_pvt = start + answered, req_cons = start + posted.
        const rspProdPvt = mod(start + answered);
        const pending = posted - answered;
        const edges = [32, pending, 0];
        const bogus = useEdge ? mod(rspProdPvt + edges[Math.abs(nearEdge) % 3]! + nearEdge) : anyValue;
        mem.store32(SRING_REQ_PROD, bogus);
        const ahead = mod(bogus - rspProdPvt);
        // RING_REQUEST_PROD_OVERFLOW, plus: never behind what was already consumed.
        const shouldBreak = ahead > 32 || ahead < pending;
        // unconsumedRequests reads req_prod even when no response slot is free (nextRequest
        // then does not look at it: RING_REQUEST_CONS_OVERFLOW stops it first).
        const unconsumed = back.unconsumedRequests();
        let yielded = 0;
        while (back.nextRequest() !== undefined) yielded++;
        assert.equal(back.broken !== undefined, shouldBreak);
        assert.ok(yielded <= 32);
        assert.equal(unconsumed, shouldBreak ? 0 : Math.min(ahead - pending, 32 - pending));
        if (shouldBreak) {
          assert.equal(yielded, 0);
          assert.equal(back.broken?.reason, 'request-prod-overflow');
          assert.equal(back.finalCheckForRequests(), false);
          assert.equal(back.unconsumedRequests(), 0);
          assert.equal(back.pushResponses(), false);
        } else {
          assert.equal(yielded, ahead - pending);
        }
      }),
    { numRuns: 500 },
  );
});

test('a req_prod moving backwards past what the back consumed breaks it', () => {
  const mem = new PagedMemory(scatteredPages(1));
  initRingAt(mem, 0xfffffffe);
  const codec = testCodec(64);
  const front = FrontRing.attach(mem, codec, 0xfffffffe);
  const back = BackRing.attach(mem, codec, 0xfffffffe);
  for (let i = 0; i < 4; i++) front.putRequest({ id: i, words: [] });
  front.pushRequests();
  for (let i = 0; i < 4; i++) assert.equal(back.nextRequest()?.id, i);
  mem.store32(SRING_REQ_PROD, 0); // two behind req_cons (= 2 after the wrap)
  assert.equal(back.nextRequest(), undefined);
  assert.equal(back.broken?.reason, 'request-prod-overflow');
});

test('a bogus rsp_prod breaks the front exactly when it claims more responses than requests', () => {
  fc.assert(
    fc.property(startArb, fc.integer({ min: 0, max: 32 }), fc.nat({ max: 0xffffffff }), fc.integer({ min: -2, max: 2 }), fc.boolean(),
      (start, posted, anyValue, nearEdge, useEdge) => {
        const mem = new PagedMemory(scatteredPages(1));
        initRingAt(mem, start);
        const front = FrontRing.attach(mem, testCodec(64), start);
        for (let i = 0; i < posted; i++) front.putRequest({ id: i, words: [] });
        front.pushRequests();
        const bogus = useEdge ? mod(start + posted + nearEdge) : anyValue;
        mem.store32(SRING_RSP_PROD, bogus);
        let yielded = 0;
        while (front.nextResponse() !== undefined) yielded++;
        const claimed = mod(bogus - start);
        assert.equal(front.broken !== undefined, claimed > posted);
        assert.equal(yielded, claimed > posted ? 0 : claimed);
      }),
    { numRuns: 500 },
  );
});
