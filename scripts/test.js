#!/usr/bin/env node
// The whole suite: type-check and compile to dist/, then run every compiled *.test.js with
// node's test runner. Node 20's runner takes no globs, so the files are listed here.
// `npm test -- src/ring` runs only the tests under the given source folders or files.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
process.chdir(root);

const tsc = spawnSync('npx', ['tsc', '-p', '.'], { stdio: 'inherit' });
if (tsc.status !== 0) {
  console.error('type check failed');
  process.exit(tsc.status ?? 1);
}

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

// A compiled test whose source is gone would still run: drop it. (dist/ is not wiped, so
// that two checkouts' builds running side by side never delete each other's files.)
for (const f of walk('dist', [])) {
  if (!existsSync(join('src', relative('dist', f)).replace(/\.js$/, '.ts'))) rmSync(f);
}

const filters = process.argv.slice(2).map((f) => relative('src', f).replace(/\.ts$/, ''));
const files = walk('dist', [])
  .sort()
  .filter((f) => filters.length === 0 || filters.some((flt) => relative('dist', f).startsWith(flt)));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const run = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], { stdio: 'inherit' });
process.exit(run.status ?? 1);
