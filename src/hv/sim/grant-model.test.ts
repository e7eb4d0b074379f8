/**
 * Model-based test of the grant table (reliability.md R8): random sequences of grant, map,
 * unmap, end access, map-after-end (reuse) and copy, run against a plain sequential model.
 * After every command the shared entries' GTF_reading/GTF_writing, the granter's pin count
 * and the mappers' maptrack must agree with the model.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { GNTST_okay, GNTST_permission_denied, GTF_reading, GTF_writing } from '../../abi/grant_table.js';
import { errorCode, gntstCode, type DomId, type Frame, type GrantRef } from './model-support.js';
import type { GrantMapping } from '../platform.js';
import { DW } from '../../memory/index.js';
import { SimPlatform } from './platform.js';
import { withHypervisor } from './testing.js';
import type { Hypervisor } from './hypervisor.js';

interface MGrant {
  ref: number;
  frame: number;
  readonly: boolean;
  grantee: number;
  r: number;
  w: number;
}
interface MMap {
  grant: MGrant;
  writable: boolean;
  by: number;
}
interface Model {
  grants: MGrant[];
  maps: MMap[];
  ended: number[];
}
interface Real {
  hv: Hypervisor;
  g: SimPlatform;
  mappers: Map<number, SimPlatform>;
  frames: Frame[];
  maps: GrantMapping[];
}
type Cmd = fc.Command<Model, Real>;

function check(m: Model, r: Real): void {
  const shared = r.g.grants.view(r.g.domid).shared;
  for (const g of m.grants) {
    const f = Atomics.load(shared, g.ref * 2) & 0xffff;
    assert.equal((f & GTF_reading) !== 0, g.r + g.w > 0, `ref ${g.ref} GTF_reading`);
    assert.equal((f & GTF_writing) !== 0, g.w > 0, `ref ${g.ref} GTF_writing`);
  }
  const pins = m.grants.reduce((n, g) => n + g.r + g.w, 0);
  assert.equal(r.hv.table.get(r.g.domid, DW.FOREIGN_PINS), pins, 'pins');
  for (const d of r.mappers.keys()) {
    assert.equal(r.hv.table.get(d, DW.MAPTRACK_USED), m.maps.filter((x) => x.by === d).length, `maptrack of dom${d}`);
  }
}

/** The grantee itself, or (wrong) the other mapping domain. */
function pick(r: Real, grantee: number, wrong: boolean): number {
  return wrong ? [...r.mappers.keys()].find((d) => d !== grantee)! : grantee;
}

class GrantCmd implements Cmd {
  constructor(readonly frame: number, readonly ro: boolean, readonly toOther: boolean) {}
  check = () => true;
  run(m: Model, r: Real): void {
    const grantee = [...r.mappers.keys()][this.toOther ? 1 : 0]!;
    const ref = r.g.grants.grantAccess(grantee as DomId, r.frames[this.frame]!, this.ro);
    assert.ok(!m.grants.some((g) => g.ref === ref), `ref ${ref} handed out twice`);
    m.grants.push({ ref, frame: this.frame, readonly: this.ro, grantee, r: 0, w: 0 });
    m.ended = m.ended.filter((e) => e !== ref);
    check(m, r);
  }
  toString = () => `grant(f${this.frame}, ${this.ro ? 'ro' : 'rw'}, ${this.toOther ? 'other' : 'dom0'})`;
}

class MapCmd implements Cmd {
  constructor(readonly i: number, readonly writable: boolean, readonly byOther: boolean) {}
  check = (m: Readonly<Model>) => m.grants.length > 0;
  run(m: Model, r: Real): void {
    const g = m.grants[this.i % m.grants.length]!;
    const by = pick(r, g.grantee, this.byOther);
    const ok = by === g.grantee && !(this.writable && g.readonly);
    let mapping: GrantMapping | undefined;
    const code = errorCode(() => (mapping = r.mappers.get(by)!.grants.map(r.g.domid, [g.ref as GrantRef], this.writable)));
    assert.equal(code, ok ? undefined : 'GNTST_permission_denied');
    if (mapping !== undefined) {
      // The mapping shows the granter's frame, live.
      const page = r.g.memory.page(r.frames[g.frame]!);
      page[7] = (page[7]! + 1) & 0xff;
      assert.equal(mapping.pages[0]![7], page[7]);
      r.maps.push(mapping);
      m.maps.push({ grant: g, writable: this.writable, by });
      if (this.writable) g.w++;
      else g.r++;
    }
    check(m, r);
  }
  toString = () => `map(${this.i}, ${this.writable ? 'rw' : 'ro'}${this.byOther ? ', wrong domain' : ''})`;
}

class UnmapCmd implements Cmd {
  constructor(readonly i: number) {}
  check = (m: Readonly<Model>) => m.maps.length > 0;
  run(m: Model, r: Real): void {
    const k = this.i % m.maps.length;
    r.maps.splice(k, 1)[0]!.dispose();
    const [x] = m.maps.splice(k, 1);
    if (x!.writable) x!.grant.w--;
    else x!.grant.r--;
    check(m, r);
  }
  toString = () => `unmap(${this.i})`;
}

class EndCmd implements Cmd {
  constructor(readonly i: number) {}
  check = (m: Readonly<Model>) => m.grants.length > 0;
  run(m: Model, r: Real): void {
    const k = this.i % m.grants.length;
    const g = m.grants[k]!;
    const expect = g.r + g.w === 0;
    assert.equal(r.g.grants.endAccess(g.ref as GrantRef), expect, `endAccess(${g.ref}) with ${g.r}r/${g.w}w pins`);
    if (expect) {
      m.grants.splice(k, 1);
      m.ended.push(g.ref);
      // The frontend may now reuse the page: nothing may see it through an old mapping.
      r.g.memory.page(r.frames[g.frame]!)[0] = 0xee;
    }
    check(m, r);
  }
  toString = () => `end(${this.i})`;
}

class MapEndedCmd implements Cmd {
  constructor(readonly i: number) {}
  check = (m: Readonly<Model>) => m.ended.length > 0;
  run(m: Model, r: Real): void {
    const ref = m.ended[this.i % m.ended.length]!;
    for (const d of r.mappers.keys()) {
      assert.equal(errorCode(() => r.mappers.get(d)!.grants.map(r.g.domid, [ref as GrantRef], false)), 'GNTST_permission_denied');
    }
    check(m, r);
  }
  toString = () => `mapEnded(${this.i})`;
}

class CopyCmd implements Cmd {
  constructor(readonly i: number, readonly toGrant: boolean, readonly byOther: boolean) {}
  check = (m: Readonly<Model>) => m.grants.length > 0;
  run(m: Model, r: Real): void {
    const g = m.grants[this.i % m.grants.length]!;
    const by = pick(r, g.grantee, this.byOther);
    const ok = by === g.grantee && !(this.toGrant && g.readonly);
    const buf = new Uint8Array([1, 2, 3, 4]);
    const grant = { kind: 'grant' as const, domid: r.g.domid, ref: g.ref as GrantRef, offset: 100 };
    const local = { kind: 'local' as const, buf, offset: 0 };
    const [st] = r.mappers.get(by)!.grants.copy([
      this.toGrant ? { source: local, dest: grant, len: 4 } : { source: grant, dest: local, len: 4 },
    ]);
    assert.equal(st, ok ? GNTST_okay : GNTST_permission_denied, gntstCode(st!));
    if (ok) assert.deepEqual([...buf], [...r.g.memory.page(r.frames[g.frame]!).subarray(100, 104)]);
    check(m, r);
  }
  toString = () => `copy(${this.i}, ${this.toGrant ? 'to' : 'from'} grant${this.byOther ? ', wrong domain' : ''})`;
}

/** Mostly the grantee maps (the interesting paths); sometimes the wrong domain tries. */
const byWrongOne = fc.nat(4).map((n) => n === 0);
const mapArb = fc.tuple(fc.nat(20), fc.boolean(), byWrongOne).map(([i, w, o]) => new MapCmd(i, w, o));
const commands = [
  fc.tuple(fc.nat(3), fc.boolean(), fc.boolean()).map(([f, ro, o]) => new GrantCmd(f, ro, o)),
  mapArb,
  mapArb,
  fc.nat(20).map((i) => new UnmapCmd(i)),
  fc.nat(20).map((i) => new EndCmd(i)),
  fc.nat(20).map((i) => new MapEndedCmd(i)),
  fc.tuple(fc.nat(20), fc.boolean(), byWrongOne).map(([i, t, o]) => new CopyCmd(i, t, o)),
];

test('grant table against a sequential model (grant, map, unmap, end access, reuse, copy)', () =>
  withHypervisor(async (hv) => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 80, size: 'large' }), async (cmds) => {
        const gd = hv.createDomain({ memoryPages: 16, startInfo: false });
        const od = hv.createDomain({ memoryPages: 16, startInfo: false });
        const g = SimPlatform.attach(hv.platformHandle(gd));
        const o = SimPlatform.attach(hv.platformHandle(od));
        const real: Real = { hv, g, mappers: new Map([[0, hv.dom0], [od, o]]), frames: g.memory.allocPages(4), maps: [] };
        const model: Model = { grants: [], maps: [], ended: [] };
        try {
          fc.modelRun(() => ({ model, real }), cmds);
        } finally {
          for (const mp of real.maps) mp.dispose();
          for (const gr of model.grants) g.grants.endAccess(gr.ref as GrantRef);
          g.dispose();
          o.dispose();
          await hv.destroy(gd);
          await hv.destroy(od);
        }
      }),
      { numRuns: 80 },
    );
  }));
