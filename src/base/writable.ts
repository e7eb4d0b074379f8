/** `T` with its fields writable: for objects a decoder or parser fills in place. */
export type Writable<T> = { -readonly [K in keyof T]: T[K] };
