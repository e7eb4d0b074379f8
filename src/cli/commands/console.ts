/**
 * `xenpv console DOM`: the guest's console 0 through the host (the console daemon's attach
 * stream). On a terminal stdin goes raw and Ctrl+] (0x1d) detaches, as in xl; otherwise stdin
 * is copied to the guest and output is printed until the console closes.
 */
import { HostClient } from '../../toolstack/index.js';
import { hostDir } from './host-client.js';

const CTRL_RIGHT_BRACKET = 0x1d;

export async function attachConsole(domain: string): Promise<void> {
  const client = await HostClient.connect(hostDir());
  let opened: Awaited<ReturnType<HostClient['console']>>;
  try {
    opened = await client.console(domain);
  } catch (err) {
    client.close();
    throw err;
  }
  const { socket: sock, first } = opened;
  const tty = process.stdin.isTTY === true;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      process.stdin.off('data', onInput);
      if (tty) process.stdin.setRawMode(false);
      process.stdin.pause();
      sock.destroy();
      resolve();
    };
    const onInput = (chunk: Buffer): void => {
      const at = tty ? chunk.indexOf(CTRL_RIGHT_BRACKET) : -1;
      if (at >= 0) {
        if (at > 0) sock.write(chunk.subarray(0, at));
        done();
        return;
      }
      sock.write(chunk);
    };
    if (tty) process.stdin.setRawMode(true);
    process.stdin.on('data', onInput);
    // libuv's raw mode keeps ONLCR on output, so the guest's bytes go out unchanged.
    const show = (buf: Buffer): void => void process.stdout.write(buf);
    if (first.length > 0) show(first);
    sock.on('data', (b: Buffer | string) => show(typeof b === 'string' ? Buffer.from(b, 'binary') : b));
    sock.on('close', done);
    process.once('SIGINT', done);
  });
}
