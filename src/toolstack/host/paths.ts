/**
 * The run directory: `XENPV_RUN_DIR`, else `/run/xenpv` for root, else
 * `$XDG_RUNTIME_DIR/xenpv`, else `~/.xenpv/run`. It holds `control.sock` (the toolstack's
 * JSON-lines RPC), `xenstored.sock` (point `XENSTORED_PATH` at it for Xen's xenstore-* tools),
 * `host.pid`, `host.log` and the guests' console logs (`guest-<name>.log`).
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

export function runDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.XENPV_RUN_DIR !== undefined && env.XENPV_RUN_DIR !== '') return env.XENPV_RUN_DIR;
  if (process.getuid?.() === 0) return '/run/xenpv';
  if (env.XDG_RUNTIME_DIR !== undefined && env.XDG_RUNTIME_DIR !== '') return join(env.XDG_RUNTIME_DIR, 'xenpv');
  return join(homedir(), '.xenpv', 'run');
}

export const controlSocket = (dir: string): string => join(dir, 'control.sock');
export const pidFile = (dir: string): string => join(dir, 'host.pid');
export const logFile = (dir: string): string => join(dir, 'host.log');
export const storeSocket = (dir: string): string => join(dir, 'xenstored.sock');
