/**
 * One frontend device instance and its state machine (Linux blkfront's blkback_changed and
 * netfront's netback_changed are the model; protocols.md §2.3-2.6):
 *
 *   backend InitWait, we Initialising            -> driver.initialise(): keys, then Initialised
 *                                                   (blk) or Connected (net, MiniOS)
 *   backend Connected, we Initialised            -> driver.connect(), Connected
 *   backend Connected, we Initialising           -> both of the above (backends may skip InitWait)
 *   backend Connected again, we Connected        -> driver.backendChanged() (blkback's resize)
 *   backend Closing | Closed | gone              -> disconnect, Closed
 *   backend Closed, we Closed because of it      -> Initialising: offer to reconnect
 *   backend InitWait, we Closed/Initialised/Conn -> the backend restarted: disconnect, reinitialise
 *   backend garbage, or the driver rejects keys  -> disconnect, error node, Closing
 *
 * Frontend restart (a new instance finding an earlier one's state): Closing, wait for the
 * backend to close, Closed, then Initialising — Linux's xenbus_reset_state after kexec.
 * The backend is hostile too (XSA-391): steps coalesce, and (re)initialisations are budgeted.
 */
import {
  XenbusStateClosed,
  XenbusStateClosing,
  XenbusStateConnected,
  XenbusStateInitialised,
  XenbusStateInitialising,
  XenbusStateInitWait,
  XenbusStateUnknown,
  type XenbusStateValue,
} from '../abi/io/xenbus.js';
import type { DomId } from '../base/index.js';
import type { XsClient } from '../xenstore/client/index.js';
import { DeviceMachine, errMsg, isLeftOver, type DisconnectReason } from './device-machine.js';
import { readState, switchState } from './state.js';

export type { DisconnectReason };

export interface FrontendContext {
  readonly client: XsClient;
  readonly selfDomid: DomId;
  readonly frontClass: string;
  readonly devid: number;
  readonly frontPath: string;
  /** From the frontend's `backend` key, checked against `backend-id` and our own identity. */
  readonly backPath: string;
  readonly backDomid: DomId;
  readonly errorPath: string;
  log(msg: string): void;
}

export interface FrontendInstance {
  /**
   * Allocate rings and ports and publish them (one transaction, keys.ts writeKeys); return the
   * state to announce: Initialised, or Connected for drivers that skip it (netfront).
   */
  initialise(): Promise<typeof XenbusStateInitialised | typeof XenbusStateConnected>;
  /** The backend is Connected: read its properties; throw to refuse them. */
  connect(): Promise<void>;
  /** Release what `initialise` took. Called once per successful initialise. */
  disconnect(reason: DisconnectReason): Promise<void> | void;
  /** The backend re-announced Connected while we are connected (new `sectors`, ...). */
  backendChanged?(): Promise<void> | void;
  /** The device is gone: release what `create` took. */
  remove?(): Promise<void> | void;
}

export interface FrontendDriver {
  create(ctx: FrontendContext): Promise<FrontendInstance>;
}

export interface FrontendDeviceOptions {
  /** (Re)initialisations allowed per window before the backend is given up; default 8 per 10 s. */
  readonly maxInitialises?: number;
  readonly initialiseWindowMs?: number;
}

export type FrontendPhase = 'starting' | 'resetting' | 'running' | 'bad' | 'removed';

export class FrontendDevice extends DeviceMachine<FrontendInstance> {
  private initialised = false;
  private closedByBackend = false;
  /** The backend state the previous step acted on: InitWait means "restarted" only as a change. */
  private lastBackend: XenbusStateValue = XenbusStateUnknown;
  phase: FrontendPhase = 'starting';

  constructor(
    readonly ctx: FrontendContext,
    private readonly driver: FrontendDriver,
    options: FrontendDeviceOptions = {},
  ) {
    super(ctx, { side: 'front', describeError: errMsg, budget: { max: options.maxInitialises ?? 8, windowMs: options.initialiseWindowMs ?? 10_000 } });
  }

  async start(prior: XenbusStateValue): Promise<void> {
    const { client, frontPath } = this.ctx;
    try {
      this.instance = await this.driver.create(this.ctx);
    } catch (err) {
      this.phase = 'bad';
      return this.recordFatal(`create: ${errMsg(err)}`);
    }
    if (isLeftOver(prior)) {
      this.phase = 'resetting';
      await switchState(client, frontPath, XenbusStateClosing);
    } else {
      this.phase = 'running';
    }
    await this.followPeer();
  }

  protected async step(): Promise<void> {
    if (this.phase === 'starting' || this.phase === 'removed') return;
    const own = await this.readOwnState();
    if (own === undefined) return;
    const be = await this.readPeerState('backend');
    if (be === undefined) return;
    try {
      if (this.phase === 'resetting') await this.stepReset(be, own);
      else await this.react(be, own);
    } finally {
      this.lastBackend = be;
    }
  }

  private async stepReset(be: XenbusStateValue, own: XenbusStateValue): Promise<void> {
    const { client, frontPath } = this.ctx;
    if (be === XenbusStateClosing) {
      await switchState(client, frontPath, XenbusStateClosed);
    } else if (be === XenbusStateClosed || be === XenbusStateUnknown || be === XenbusStateInitWait) {
      if (own !== XenbusStateClosed) await switchState(client, frontPath, XenbusStateClosed);
      this.phase = 'running';
      await switchState(client, frontPath, XenbusStateInitialising);
      if (be === XenbusStateInitWait) await this.initialise();
    }
  }

  private async react(be: XenbusStateValue, own: XenbusStateValue): Promise<void> {
    if (this.phase === 'bad') {
      if (be === XenbusStateClosing || be === XenbusStateClosed || be === XenbusStateUnknown) await this.close();
      return;
    }
    switch (be) {
      case XenbusStateInitWait:
        // Initialising: the normal start. Closed: the backend came back. Initialised or
        // Connected: only if the backend went through another state since (it restarted).
        if (own === XenbusStateInitialising || own === XenbusStateClosed) await this.initialise();
        else if ((own === XenbusStateInitialised || own === XenbusStateConnected) && this.lastBackend !== XenbusStateInitWait) {
          await this.initialise();
        }
        return;
      case XenbusStateConnected:
        return this.onBackendConnected(own);
      case XenbusStateClosing:
        if (own !== XenbusStateClosed) await this.close();
        return;
      case XenbusStateUnknown:
      case XenbusStateClosed:
        if (own === XenbusStateClosed) {
          if (!this.closedByBackend) return;
          // Offer to reconnect; the backend answers InitWait if the device is still online.
          this.closedByBackend = false;
          await switchState(this.ctx.client, this.ctx.frontPath, XenbusStateInitialising);
        } else if (own !== XenbusStateInitialising || this.initialised) {
          // (Initialising with nothing set up is our standing offer: not closed again.)
          await this.close();
        }
        return;
      default:
        return;
    }
  }

  private async onBackendConnected(own: XenbusStateValue): Promise<void> {
    if (own === XenbusStateClosing || own === XenbusStateClosed) return;
    if (own === XenbusStateInitialising || !this.initialised) {
      if (!(await this.initialise())) return;
    }
    if (this.connected) {
      await this.instance?.backendChanged?.();
      return;
    }
    try {
      await this.instance!.connect();
    } catch (err) {
      return this.protocolError(`connect: ${errMsg(err)}`);
    }
    this.connected = true;
    this.connects++;
    await switchState(this.ctx.client, this.ctx.frontPath, XenbusStateConnected);
  }

  /** (Re)initialise: release anything from before, publish new keys. False if it failed. */
  private async initialise(): Promise<boolean> {
    const { client, frontPath } = this.ctx;
    if (!this.budget.take()) {
      this.phase = 'bad';
      await this.protocolError('backend restarts too often');
      return false;
    }
    await this.disconnect(this.initialised ? 'backend-restart' : 'reinitialise');
    const now = await readState(client, frontPath);
    if (now.kind === 'state' && now.state !== XenbusStateInitialising) {
      await switchState(client, frontPath, XenbusStateInitialising);
    }
    let target: XenbusStateValue;
    try {
      target = await this.instance!.initialise();
    } catch (err) {
      await this.protocolError(`initialise: ${errMsg(err)}`);
      return false;
    }
    this.initialised = true;
    this.closedByBackend = false;
    return switchState(client, frontPath, target);
  }

  private async close(): Promise<void> {
    await this.disconnect('backend-closed');
    this.closedByBackend = true;
    await switchState(this.ctx.client, this.ctx.frontPath, XenbusStateClosed);
  }

  protected async disconnect(reason: DisconnectReason): Promise<void> {
    if (!this.initialised) return;
    this.initialised = false;
    this.connected = false;
    try {
      await this.instance?.disconnect(reason);
    } catch (err) {
      this.logFailure('disconnect', err);
    }
  }

  /** The directory is gone or we stop: release everything, no store writes. */
  async destroy(reason: DisconnectReason = 'removed'): Promise<void> {
    await this.stopStepping();
    if (this.phase === 'removed') return;
    this.phase = 'removed';
    await this.disconnect(reason);
    await this.removeInstance();
  }

  /** Graceful stop (the guest unloads the driver): release, then Closed. */
  async shutdown(): Promise<void> {
    await this.destroy('shutdown');
    await switchState(this.ctx.client, this.ctx.frontPath, XenbusStateClosed).catch(() => undefined);
  }

  describe(): string {
    return `${this.ctx.frontPath} ${this.phase}${this.connected ? ' connected' : this.initialised ? ' initialised' : ''}`;
  }
}
