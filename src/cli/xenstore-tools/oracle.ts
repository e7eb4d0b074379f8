/**
 * Test support: run a xenstore-* command line through Xen's own client (Debian's
 * xenstore-utils, the conformance oracle) and through ours, and capture stdout, stderr and the
 * exit code of each, so tests can compare them byte for byte.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { xenstoreMain, type XenstoreToolOptions } from '../xenstore-tools.js';

export const XEN_XENSTORE_BINARY = '/usr/bin/xenstore';

export interface Outcome {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

/** Why Xen's tools cannot be run here, or undefined when they can. */
export function oracleMissing(): string | undefined {
  return existsSync(XEN_XENSTORE_BINARY) ? undefined : `${XEN_XENSTORE_BINARY} not installed (Debian package xenstore-utils)`;
}

/** Bytes shown as a latin1 string, so assertion diffs are readable and exact. */
const show = (chunks: Buffer[]): string => Buffer.concat(chunks).toString('latin1');

/**
 * Xen's binary, called as `argv0` (its multi-call name), asynchronously: the daemon under test
 * may live in this very process and must keep serving while the tool runs.
 */
export function runXen(
  argv0: string,
  args: readonly string[],
  env: Record<string, string>,
  onStdout?: (chunk: Buffer) => void,
  timeoutMs = 5000,
): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(XEN_XENSTORE_BINARY, args, { argv0, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => {
      out.push(b);
      onStdout?.(b);
    });
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      resolve({ stdout: show(out), stderr: show(err), code: code ?? (signal === null ? -1 : 128) });
    });
  });
}

/** Ours, in this process, with the same environment (and, optionally, its own way to the store). */
export async function runOurs(
  argv0: string,
  args: readonly string[],
  env: Record<string, string>,
  onStdout?: (chunk: Buffer) => void,
  options: XenstoreToolOptions = {},
): Promise<Outcome> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const io = {
    stdout: (b: Uint8Array) => {
      out.push(Buffer.from(b));
      onStdout?.(Buffer.from(b));
    },
    stderr: (b: Uint8Array) => err.push(Buffer.from(b)),
    env,
  };
  const code = await xenstoreMain(argv0, args, io, options);
  return { stdout: show(out), stderr: show(err), code };
}
