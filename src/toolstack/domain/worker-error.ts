import { errorCode } from '../../base/index.js';

/**
 * An error as a dom0 worker thread (disk-worker.ts, ring-worker.ts) tells its parent about it
 * in an `error` or `refused` message: its code (EIO when it has none) and its message.
 */
export function errorFields(err: unknown): { code: string; message: string } {
  return { code: errorCode(err) ?? 'EIO', message: err instanceof Error ? err.message : String(err) };
}
