/** Helpers shared by the storage tests: temporary directories and Debian's qemu-img. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { skipUnlessInstalled } from '../../../base/testing.js';

export function tempDir(prefix: string): { path: string; file: (name: string) => string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), `xenpv-${prefix}-`));
  return { path, file: (name) => join(path, name), remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface RunResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function qemuImg(...args: string[]): RunResult {
  const r = spawnSync('qemu-img', args, { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}

export function qemuIo(...args: string[]): RunResult {
  const r = spawnSync('qemu-io', args, { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}

/** Skip reason when qemu-img is missing (Debian qemu-utils); undefined when present. */
export const noQemuImg: string | false = skipUnlessInstalled(
  spawnSync('qemu-img', ['--version']).status === 0 ? false : 'qemu-img (Debian qemu-utils) is not installed',
);
