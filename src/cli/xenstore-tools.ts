/** xenstore-read, -write, ...: filled in by the XenStore work. */
export async function xenstoreMain(argv0: string, _args: string[]): Promise<number> {
  process.stderr.write(`${argv0}: not yet\n`);
  return 1;
}
