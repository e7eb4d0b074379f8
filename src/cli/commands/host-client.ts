/**
 * What the host-talking commands share: the run dir, one RPC call, progress lines that show
 * on a terminal only (quiet in pipes), and the domain argument.
 */
import { callHost } from '../../toolstack/host/rpc-client.js';
import { runDir } from '../../toolstack/host/paths.js';

export function hostDir(): string {
  return runDir();
}

export function rpc<T = unknown>(method: string, params: Record<string, unknown> = {}): Promise<T> {
  return callHost<T>(hostDir(), method, params);
}

/** A progress line on stderr when it is a terminal; nothing in a pipe. */
export function progress(line: string): void {
  if (process.stderr.isTTY === true) process.stderr.write(`${line}\n`);
}
