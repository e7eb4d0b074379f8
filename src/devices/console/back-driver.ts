/**
 * The xenbus backend driver for secondary consoles (`backend/console/<fe>/<n>`): on the
 * frontend's Initialised, read its `ring-ref` (a grant ref) and `port` strictly, map, bind and
 * serve it with a `ConsoleBack`. A guest that breaks the ring gets the device closed.
 */
import { type DomId, type EvtchnPort, type GrantRef } from '../../base/index.js';
import type { Platform } from '../../hv/platform.js';
import type { BackendContext, BackendDriver, BackendInstance } from '../../xenbus/backend-device.js';
import { readUint } from '../../xenbus/keys.js';
import { deviceFatal } from '../../xenbus/state.js';
import { ConsoleBack, type ConsoleBackOptions } from './back.js';

export interface ConsoleBackendHooks {
  /** A console connected (`key` = `<domid>/<devid>`). */
  readonly onConnect?: (key: string, back: ConsoleBack, ctx: BackendContext) => void;
  readonly onDisconnect?: (key: string, back: ConsoleBack) => void;
  /** Options per console (a log file name, the limit...). */
  readonly options?: (ctx: BackendContext) => ConsoleBackOptions;
}

export function consoleBackendDriver(platform: Platform, hooks: ConsoleBackendHooks = {}): BackendDriver {
  return {
    async probe(ctx: BackendContext): Promise<BackendInstance> {
      const key = `${ctx.dev.frontDomid}/${ctx.dev.devid}`;
      let back: ConsoleBack | undefined;
      return {
        async connect() {
          const ref = await readUint(ctx.client, ctx.frontPath, 'ring-ref', { max: 0xffffffff });
          const port = await readUint(ctx.client, ctx.frontPath, 'port', { min: 1, max: 0xffffffff });
          const options = hooks.options?.(ctx) ?? {};
          back = ConsoleBack.connect(platform, ctx.dev.frontDomid as DomId, ref as GrantRef, port as EvtchnPort, {
            name: key,
            ...options,
            onBad: (reason) => {
              options.onBad?.(reason);
              void deviceFatal(ctx.client, ctx.backPath, ctx.errorPath, reason);
            },
          });
          hooks.onConnect?.(key, back, ctx);
        },
        async disconnect() {
          const b = back;
          back = undefined;
          if (b === undefined) return;
          hooks.onDisconnect?.(key, b);
          await b.close();
        },
      };
    },
  };
}
