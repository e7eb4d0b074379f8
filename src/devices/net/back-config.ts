/**
 * What netback reads from the frontend's directory at connect (netif.h; Linux netback's
 * connect / connect_data_rings / read_xenbus_vif_flags). The directory is guest-writable:
 * every value is parsed strictly (R10) and an inconsistent set is refused whole, as netif.h
 * allows: "If there is any inconsistency in the XenStore data, the backend may choose not to
 * connect any queues". A refusal throws XenpvError EPROTO, which the caller turns into
 * the device's error node and Closing.
 */
import { XenpvError, toEvtchnPort, toGrantRef, type EvtchnPort, type GrantRef } from '../../base/index.js';
import type { XsClient } from '../../xenstore/client/index.js';
import { readBool, readOptional, readUint } from '../../xenbus/keys.js';
import { queueDir } from './protocol.js';

export interface FrontQueueKeys {
  readonly txRef: GrantRef;
  readonly rxRef: GrantRef;
  readonly ports: { readonly tx: EvtchnPort; readonly rx: EvtchnPort };
}

export interface FrontConfig {
  readonly queues: readonly FrontQueueKeys[];
  readonly rxNotify: boolean;
  readonly sg: boolean;
  readonly gsoV4: boolean;
  readonly gsoV6: boolean;
  /** The frontend cannot take checksum-blank IPv4 frames. */
  readonly noCsumOffload: boolean;
  readonly ipv6CsumOffload: boolean;
  readonly multicastControl: boolean;
  readonly ctrl?: { readonly ref: GrantRef; readonly port: EvtchnPort };
}

const U32 = { max: 0xffffffff };

async function readRef(store: XsClient, dir: string, key: string): Promise<GrantRef> {
  return toGrantRef(await readUint(store, dir, key, U32)) as GrantRef;
}

async function readPort(store: XsClient, dir: string, key: string): Promise<EvtchnPort> {
  return toEvtchnPort(await readUint(store, dir, key, { min: 1, max: 0xffffffff })) as EvtchnPort;
}

/** Ring refs and event channel(s) of one queue; split channels only if we advertised them. */
async function readQueue(store: XsClient, dir: string, split: boolean): Promise<FrontQueueKeys> {
  const txRef = await readRef(store, dir, 'tx-ring-ref');
  const rxRef = await readRef(store, dir, 'rx-ring-ref');
  const single = await readOptional(store, dir, 'event-channel');
  if (single === undefined && split) {
    return { txRef, rxRef, ports: { tx: await readPort(store, dir, 'event-channel-tx'), rx: await readPort(store, dir, 'event-channel-rx') } };
  }
  const port = await readPort(store, dir, 'event-channel');
  return { txRef, rxRef, ports: { tx: port, rx: port } };
}

export interface BackFeatures {
  readonly maxQueues: number;
  readonly split: boolean;
  readonly ctrlRing: boolean;
  readonly multicast: boolean;
}

export async function readFrontConfig(store: XsClient, frontDir: string, f: BackFeatures): Promise<FrontConfig> {
  const n = await readUint(store, frontDir, 'multi-queue-num-queues', { default: 1 });
  if (n < 1 || n > f.maxQueues) {
    throw new XenpvError('EPROTO', `guest requested ${n} queues, exceeding the maximum of ${f.maxQueues}`, { n });
  }
  // "Frontends requesting two or more queues must not write the toplevel ... keys".
  if (n > 1 && (await readOptional(store, frontDir, 'tx-ring-ref')) !== undefined) {
    throw new XenpvError('EPROTO', `${n} queues but top-level ring keys present`, { n });
  }
  if (!(await readBool(store, frontDir, 'request-rx-copy'))) {
    throw new XenpvError('EOPNOTSUPP', 'the frontend did not request rx-copy; rx-flip is not supported', {});
  }
  const queues: FrontQueueKeys[] = [];
  for (let q = 0; q < n; q++) queues.push(await readQueue(store, queueDir(frontDir, q, n), f.split));
  const sg = await readBool(store, frontDir, 'feature-sg');
  const cfg: FrontConfig = {
    queues,
    rxNotify: await readBool(store, frontDir, 'feature-rx-notify'),
    sg,
    // Linux netback: GSO needs scatter-gather on the receive side.
    gsoV4: sg && (await readBool(store, frontDir, 'feature-gso-tcpv4')),
    gsoV6: sg && (await readBool(store, frontDir, 'feature-gso-tcpv6')),
    noCsumOffload: await readBool(store, frontDir, 'feature-no-csum-offload'),
    ipv6CsumOffload: await readBool(store, frontDir, 'feature-ipv6-csum-offload'),
    multicastControl: f.multicast && (await readBool(store, frontDir, 'request-multicast-control')),
  };
  const ctrlRef = await readOptional(store, frontDir, 'ctrl-ring-ref');
  if (ctrlRef === undefined || !f.ctrlRing) return cfg;
  return { ...cfg, ctrl: { ref: await readRef(store, frontDir, 'ctrl-ring-ref'), port: await readPort(store, frontDir, 'event-channel-ctrl') } };
}
