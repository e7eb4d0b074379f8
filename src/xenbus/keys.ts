/**
 * Typed xenstore keys for feature negotiation (protocols.md §2.3-2.4, §3.1, §4.1).
 *
 * The peer writes the keys we read, so every reader is strict (reliability.md R10): a plain
 * decimal within bounds, a string within a length and a pattern. A missing key gives the
 * default when there is one. Anything else throws XenpvError EPROTO naming the key; the
 * xenbus device machinery turns that into the protocol's answer (error node + Closing), so a
 * driver can simply read and let a bad key end the handshake.
 */
import { XenpvError, errorCode } from '../base/index.js';
import type { TxRef, XsClient } from '../xenstore/client/index.js';

export interface UintBounds {
  readonly min?: number;
  readonly max?: number;
  /** Used when the key is absent; without it an absent key is EPROTO. */
  readonly default?: number;
}

export interface StringBounds {
  /** Default 256 bytes. */
  readonly maxLength?: number;
  readonly pattern?: RegExp;
  readonly default?: string;
}

/** The key's value, or undefined when it does not exist. */
export async function readOptional(client: XsClient, dir: string, key: string, tx?: TxRef): Promise<string | undefined> {
  try {
    return await client.readString(`${dir}/${key}`, tx);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

function bad(dir: string, key: string, why: string, raw?: string): XenpvError {
  const quoted = raw === undefined ? '' : ` '${raw.slice(0, 32)}'`;
  return new XenpvError('EPROTO', `${dir}/${key}: ${why}${quoted}`, { dir, key });
}

/** An unsigned decimal (no sign, no spaces, no leading zeros beyond "0"), < 2^53. */
export function parseUint(raw: string): number | undefined {
  if (!/^(0|[1-9][0-9]{0,15})$/.test(raw)) return undefined;
  const n = Number(raw);
  return Number.isSafeInteger(n) ? n : undefined;
}

export async function readUint(client: XsClient, dir: string, key: string, bounds: UintBounds = {}, tx?: TxRef): Promise<number> {
  const raw = await readOptional(client, dir, key, tx);
  if (raw === undefined) {
    if (bounds.default !== undefined) return bounds.default;
    throw bad(dir, key, 'missing');
  }
  const n = parseUint(raw);
  if (n === undefined) throw bad(dir, key, 'not an unsigned decimal', raw);
  if (n < (bounds.min ?? 0) || n > (bounds.max ?? Number.MAX_SAFE_INTEGER)) {
    throw bad(dir, key, `out of range [${bounds.min ?? 0}, ${bounds.max ?? 'max'}]`, raw);
  }
  return n;
}

/**
 * A `feature-*` flag: absent → `dflt`; a decimal, true when not 0 (Linux reads them with
 * xenbus_read_unsigned); anything else EPROTO.
 */
export async function readBool(client: XsClient, dir: string, key: string, dflt = false, tx?: TxRef): Promise<boolean> {
  const raw = await readOptional(client, dir, key, tx);
  if (raw === undefined) return dflt;
  const n = parseUint(raw);
  if (n === undefined) throw bad(dir, key, 'not a flag', raw);
  return n !== 0;
}

export async function readStr(client: XsClient, dir: string, key: string, bounds: StringBounds = {}, tx?: TxRef): Promise<string> {
  const raw = await readOptional(client, dir, key, tx);
  if (raw === undefined) {
    if (bounds.default !== undefined) return bounds.default;
    throw bad(dir, key, 'missing');
  }
  if (raw.length > (bounds.maxLength ?? 256)) throw bad(dir, key, `longer than ${bounds.maxLength ?? 256}`, raw);
  if (bounds.pattern !== undefined && !bounds.pattern.test(raw)) throw bad(dir, key, 'malformed', raw);
  return raw;
}

/** One of `choices`; absent → `dflt` (or EPROTO without one). */
export async function readChoice<T extends string>(
  client: XsClient,
  dir: string,
  key: string,
  choices: readonly T[],
  dflt?: T,
  tx?: TxRef,
): Promise<T> {
  const raw = await readOptional(client, dir, key, tx);
  if (raw === undefined) {
    if (dflt !== undefined) return dflt;
    throw bad(dir, key, 'missing');
  }
  if (!(choices as readonly string[]).includes(raw)) throw bad(dir, key, `not one of ${choices.join('/')}`, raw);
  return raw as T;
}

export type KeyValue = string | number | boolean;

function render(v: KeyValue): string {
  if (typeof v === 'boolean') return v ? '1' : '0';
  return String(v);
}

/**
 * Write a set of keys under `dir` in one transaction (with EAGAIN retry), as drivers publish
 * features and ring details: the peer sees all of them or none. With `tx`, inside that one.
 */
export async function writeKeys(client: XsClient, dir: string, keys: Readonly<Record<string, KeyValue>>, tx?: TxRef): Promise<void> {
  const entries = Object.entries(keys);
  if (tx !== undefined) {
    for (const [k, v] of entries) await client.write(`${dir}/${k}`, render(v), tx);
    return;
  }
  await client.withTransaction(async (t) => {
    for (const [k, v] of entries) await t.write(`${dir}/${k}`, render(v));
  });
}

/** Remove keys (absent ones are fine), in one transaction. */
export async function removeKeys(client: XsClient, dir: string, keys: readonly string[]): Promise<void> {
  await client.withTransaction(async (t) => {
    for (const k of keys) {
      await t.rm(`${dir}/${k}`).catch((err: unknown) => {
        if (errorCode(err) !== 'ENOENT') throw err;
      });
    }
  });
}

/**
 * Withdraw an advertised feature: it reads 0 from now on (Linux blkback after a flush or
 * barrier answered -EOPNOTSUPP; reliability.md R19: "After EOPNOTSUPP, the feature node reads 0").
 */
export async function withdrawFeature(client: XsClient, dir: string, key: string): Promise<void> {
  await client.write(`${dir}/${key}`, '0');
}

/**
 * For a backend whose storage refused an optional operation: when `err` is EOPNOTSUPP,
 * withdraw `key` and return true (the request is then answered BLKIF_RSP_EOPNOTSUPP);
 * otherwise return false and change nothing.
 */
export async function withdrawIfUnsupported(client: XsClient, dir: string, key: string, err: unknown): Promise<boolean> {
  if (errorCode(err) !== 'EOPNOTSUPP') return false;
  await withdrawFeature(client, dir, key);
  return true;
}
