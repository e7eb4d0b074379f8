/** Small helpers shared by the grant tests. */
import { gntstName } from '../../abi/grant_table.js';
import { errorCode as codeOf } from '../../base/index.js';

export type { DomId, Frame, GrantRef } from '../../base/index.js';

/** The `code` a call throws, or undefined when it returns. */
export function errorCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return codeOf(err) ?? String(err);
  }
  return undefined;
}

export function gntstCode(status: number): string {
  return gntstName(status);
}
