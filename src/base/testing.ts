/**
 * Tests that lean on a Debian tool (qemu-img, xenstore-utils, pyxs, tcpdump) skip with a
 * reason on a developer's machine without it. In CI (`CI` set), where `.ci/run` installs
 * every such tool, they never skip: a missing install step must fail loudly, not hide.
 */
export function skipUnlessInstalled(missing: string | false | undefined): string | false {
  if (!missing) return false;
  return process.env['CI'] ? false : missing;
}
