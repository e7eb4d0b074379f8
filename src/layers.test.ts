/**
 * Imports go one way between layers (DESIGN.md §2). Each layer lists the layers it may
 * import; a relative import that crosses into any other layer fails this test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const low = ['base', 'abi', 'memory'];
const prims = [...low, 'ring', 'grant', 'evtchn'];
const core = [...prims, 'hv'];
export const allowed: Record<string, readonly string[]> = {
  base: [],
  abi: ['base'],
  memory: ['base', 'abi'],
  ring: low,
  grant: low,
  evtchn: low,
  hv: prims,
  xenstore: core,
  xenbus: [...core, 'xenstore'],
  devices: [...core, 'xenstore', 'xenbus'],
  emu: ['base', 'abi', 'memory', 'hv'],
  guest: [...core, 'xenstore', 'xenbus', 'devices', 'emu'],
  toolstack: [...core, 'xenstore', 'xenbus', 'devices', 'emu', 'guest'],
  bench: [...core, 'xenstore', 'xenbus', 'devices', 'emu', 'guest', 'toolstack'],
  cli: [...core, 'xenstore', 'xenbus', 'devices', 'emu', 'guest', 'toolstack', 'bench'],
};

// The compiled test runs from dist/; the sources it checks are in src/.
const here = dirname(fileURLToPath(import.meta.url));
const srcRoot = resolve(here, '..', 'src');

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

function layerOf(file: string): string | undefined {
  const rel = relative(srcRoot, file);
  return rel.includes(sep) ? rel.split(sep)[0] : undefined;
}

export function violations(): string[] {
  const bad: string[] = [];
  for (const file of sources(srcRoot)) {
    const from = layerOf(file);
    if (from === undefined) continue;
    const ok = allowed[from];
    if (ok === undefined) {
      bad.push(`${relative(srcRoot, file)}: folder '${from}' is not a layer in DESIGN.md`);
      continue;
    }
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const target = layerOf(resolve(dirname(file), m[1]!));
      if (target !== undefined && target !== from && !ok.includes(target)) {
        bad.push(`${relative(srcRoot, file)} imports ${m[1]} (layer '${target}', not allowed for '${from}')`);
      }
    }
  }
  return bad;
}

test('imports go one way between layers', () => {
  assert.deepEqual(violations(), []);
});

test('the layer check sees a violation when there is one', () => {
  // A guard against a check that cannot fail: ring must not reach up into xenstore.
  assert.ok(!allowed.ring!.includes('xenstore'));
  assert.ok(allowed.cli!.includes('toolstack'));
});
