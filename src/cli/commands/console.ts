/**
 * `xenpv console DOM`: the guest's console 0 through the console daemon's attach stream: the
 * host's (`xenpv host`, its control socket), else a console daemon running on its own in the
 * run dir (`xenpv consoled` in a real Xen dom0, `console.sock`). On a terminal stdin goes raw
 * and Ctrl+] (0x1d) detaches, as in xl; otherwise stdin is copied to the guest and output is
 * printed until the console closes.
 */
import { existsSync } from 'node:fs';
import { consoleSocket, openConsoleSocket, type OpenedConsole } from '../../devices/console/index.js';
import { errorCode, XenpvError } from '../../base/index.js';
import { HostClient } from '../../toolstack/host/rpc-client.js';
import { hostDir } from './host-client.js';

const CTRL_RIGHT_BRACKET = 0x1d;

/** The host's console when a host runs; else the stand-alone console daemon's. */
async function openConsole(domain: string): Promise<OpenedConsole> {
  let client: HostClient;
  try {
    client = await HostClient.connect(hostDir());
  } catch (err) {
    const path = consoleSocket(hostDir());
    if (errorCode(err) !== 'EHOSTDOWN' || !existsSync(path)) {
      throw new XenpvError('EHOSTDOWN', `neither a xenpv host nor a console daemon runs (run dir ${hostDir()}): start \`xenpv host start\`, or \`xenpv consoled\` in a Xen dom0`);
    }
    return openConsoleSocket(path, domain);
  }
  try {
    return await client.console(domain);
  } catch (err) {
    client.close();
    throw err;
  }
}

export async function attachConsole(domain: string): Promise<void> {
  const { socket: sock, first } = await openConsole(domain);
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
    sock.resume();
    sock.on('close', done);
    process.once('SIGINT', done);
  });
}
