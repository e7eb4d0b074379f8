/**
 * `xenpv host start -F`: the host in the foreground — Host.start, the control socket, the pid
 * file — until `xenpv host stop` (the `stop` request), SIGINT or SIGTERM; then every guest is
 * destroyed and the sockets and pid file are removed. A host whose control socket vanished
 * (its run dir was deleted) stops on its own rather than linger unreachable.
 */
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { Host, type HostOptions } from './host.js';
import { controlSocket, pidFile } from './paths.js';
import { listenControl } from './rpc-server.js';

export async function runHost(dir: string, log: (line: string) => void, opts: Pick<HostOptions, 'uplinks'> = {}): Promise<void> {
  const host = await Host.start({ ...opts, runDir: dir, log });
  const baseFrames = host.hv.framesInUse;
  const control = await listenControl(host, controlSocket(dir), baseFrames);
  await writeFile(pidFile(dir), `${process.pid}\n`);
  log(`xenpv host: pid ${process.pid}, run dir ${dir}`);
  await new Promise<void>((resolve) => {
    void control.stopped.then(resolve);
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
    // Nobody can reach a host whose control socket is gone (its run dir was removed): stop.
    const orphan = setInterval(() => {
      if (!existsSync(controlSocket(dir))) resolve();
    }, 2000);
    orphan.unref();
    void control.stopped.finally(() => clearInterval(orphan));
  });
  log('xenpv host: stopping');
  await control.close();
  await host.close();
  await rm(pidFile(dir), { force: true });
  log('xenpv host: stopped');
}
