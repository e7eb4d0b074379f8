/**
 * The error model (DESIGN.md §5).
 *
 * - Peer protocol violations never throw across a boundary: they are answered with the
 *   protocol's own error, or the peer is marked bad. Nothing here is for them.
 * - Operational errors (a missing file, a refused hypercall, a taken name) are `XenpvError`s
 *   with a stable `code` that callers and tests match on, and a context object.
 * - Bugs (a state we believed impossible) are `BugError`s; `unreachable()` closes exhaustive
 *   switches so the compiler proves the cases are covered.
 */
export class XenpvError extends Error {
  readonly code: string;
  readonly context: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, context: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, options);
    this.name = 'XenpvError';
    this.code = code;
    this.context = context;
  }
}

export class BugError extends Error {
  constructor(message: string) {
    super(`bug: ${message}`);
    this.name = 'BugError';
  }
}

export function unreachable(value: never, what = 'value'): never {
  throw new BugError(`unexpected ${what}: ${JSON.stringify(value)}`);
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new BugError(message);
}

/** The `code` of an error if it has one (XenpvError, Node's system errors), else undefined. */
export function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
