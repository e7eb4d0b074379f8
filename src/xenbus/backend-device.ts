/**
 * One backend device instance and its state machine (protocols.md §2.3-2.6; Linux blkback's
 * frontend_changed is the model):
 *
 *   probe       driver publishes features, we go InitWait
 *   fe Initialised|Connected, we InitWait        -> driver.connect(), Connected
 *   fe Closing                                   -> Closing
 *   fe Closed | gone                             -> disconnect, Closed; removed if online=0
 *   fe Initialising, we Closed and online=1      -> InitWait (the frontend reconnects)
 *   fe Initialising, we Connected                -> disconnect, InitWait (frontend restarted)
 *   fe garbage, or the driver rejects its keys   -> disconnect, error node, Closing
 *
 * Backend restart: a new instance that finds the state node of an earlier one (anything but
 * Initialising) first takes the frontend through Closing/Closed (the reset Linux frontends do
 * after kexec, from our side), then offers InitWait. It never connects with keys a frontend
 * wrote for the previous incarnation.
 *
 * Hostile frontends: steps are coalesced (reactor.ts), and connect cycles are budgeted; past
 * the budget the device is marked bad, goes Closing with an error and never connects again.
 */
import {
  XenbusStateClosed,
  XenbusStateClosing,
  XenbusStateConnected,
  XenbusStateInitialised,
  XenbusStateInitialising,
  XenbusStateInitWait,
  XenbusStateReconfigured,
  XenbusStateReconfiguring,
  XenbusStateUnknown,
  type XenbusStateValue,
} from '../abi/io/xenbus.js';
import type { XsClient } from '../xenstore/client/index.js';
import { DeviceMachine, errMsg, isLeftOver } from './device-machine.js';
import { readOptional } from './keys.js';
import { readState, stateValue, switchState } from './state.js';
import type { DeviceId } from './paths.js';

/** Kept here too: the console daemon and others import it from this module. */
export { errMsg };

export interface BackendContext {
  readonly client: XsClient;
  readonly dev: DeviceId;
  readonly backPath: string;
  readonly frontPath: string;
  /** Where a fatal error is recorded (`<home>/error/backend/<class>/<fe>/<devid>`). */
  readonly errorPath: string;
  log(msg: string): void;
}

/** What a device class implements; every method may throw to refuse (the device then closes). */
export interface BackendInstance {
  /** The frontend published its transport: read its keys, map rings, bind ports, publish. */
  connect(): Promise<void>;
  /** Undo `connect`; called only after a successful connect, once per connect. */
  disconnect(): Promise<void> | void;
  /** The device is gone for good: release what `probe` took. */
  remove?(): Promise<void> | void;
  /** The frontend entered a state this machine does not act on (Reconfiguring, Reconfigured). */
  frontendChanged?(state: XenbusStateValue): Promise<void> | void;
}

export interface BackendDriver {
  /** A new device: check the toolstack's keys, publish features. Throw to refuse it. */
  probe(ctx: BackendContext): Promise<BackendInstance>;
}

export interface BackendDeviceOptions {
  /** Connect cycles allowed per window before the frontend is marked bad; default 8 per 10 s. */
  readonly maxConnects?: number;
  readonly connectWindowMs?: number;
}

export type BackendPhase = 'probing' | 'resetting' | 'running' | 'bad' | 'finished';

export class BackendDevice extends DeviceMachine<BackendInstance> {
  phase: BackendPhase = 'probing';

  constructor(
    readonly ctx: BackendContext,
    private readonly driver: BackendDriver,
    options: BackendDeviceOptions = {},
  ) {
    super(ctx, { side: 'back', describeError: String, budget: { max: options.maxConnects ?? 8, windowMs: options.connectWindowMs ?? 10_000 } });
  }

  /** Probe and start following the frontend. */
  async start(): Promise<void> {
    const { client, backPath, frontPath } = this.ctx;
    const frontKey = await readOptional(client, backPath, 'frontend');
    if (frontKey !== frontPath) return this.fail(`frontend key '${String(frontKey).slice(0, 64)}' is not ${frontPath}`);
    const prior = stateValue(await readState(client, backPath));
    try {
      this.instance = await this.driver.probe(this.ctx);
    } catch (err) {
      return this.fail(`probe: ${errMsg(err)}`);
    }
    if (isLeftOver(prior)) {
      this.phase = 'resetting';
      await switchState(client, backPath, XenbusStateClosing);
    } else {
      this.phase = 'running';
      await switchState(client, backPath, XenbusStateInitWait);
    }
    await this.followPeer();
  }

  protected async step(): Promise<void> {
    if (this.phase === 'finished' || this.phase === 'probing') return;
    // Each value is read once; the step acts on these copies only.
    const own = await this.readOwnState();
    if (own === undefined) return;
    const online = (await readOptional(this.ctx.client, this.ctx.backPath, 'online')) === '1';
    const fe = await this.readPeerState('frontend');
    if (fe === undefined) return;
    if (this.phase === 'resetting') return this.stepReset(fe, online);
    await this.react(fe, own, online);
  }

  private async stepReset(feState: XenbusStateValue, online: boolean): Promise<void> {
    const { client, backPath } = this.ctx;
    if (feState !== XenbusStateClosed && feState !== XenbusStateUnknown) return;
    await switchState(client, backPath, XenbusStateClosed);
    if (!online) return this.finish();
    this.phase = 'running';
    await switchState(client, backPath, XenbusStateInitWait);
  }

  private async react(fe: XenbusStateValue, own: XenbusStateValue, online: boolean): Promise<void> {
    const { client, backPath } = this.ctx;
    switch (fe) {
      case XenbusStateUnknown:
      case XenbusStateClosed:
        await this.disconnect();
        await switchState(client, backPath, XenbusStateClosed);
        if (!online) await this.finish();
        return;
      case XenbusStateClosing:
        if (own !== XenbusStateClosed) await switchState(client, backPath, XenbusStateClosing);
        return;
      case XenbusStateInitialising:
        if (this.phase === 'bad' || !online) return;
        if (own === XenbusStateClosed) await switchState(client, backPath, XenbusStateInitWait);
        else if (own === XenbusStateConnected || this.connected) {
          await this.disconnect();
          await switchState(client, backPath, XenbusStateInitWait);
        }
        return;
      case XenbusStateInitialised:
      case XenbusStateConnected:
        if (this.connected || this.phase === 'bad') return;
        if (own === XenbusStateInitWait || own === XenbusStateInitialising) await this.connect();
        return;
      case XenbusStateReconfiguring:
      case XenbusStateReconfigured:
        if (this.connected) await this.instance?.frontendChanged?.(fe);
        return;
      case XenbusStateInitWait:
        return;
      default:
        return;
    }
  }

  private async connect(): Promise<void> {
    if (!this.budget.take()) {
      this.phase = 'bad';
      return this.protocolError('frontend reconnects too often');
    }
    try {
      await this.instance!.connect();
    } catch (err) {
      // A driver refusing the frontend's keys (EPROTO from keys.ts, a bad grant ref...).
      return this.protocolError(`connect: ${errMsg(err)}`);
    }
    this.connected = true;
    this.connects++;
    if (!(await switchState(this.ctx.client, this.ctx.backPath, XenbusStateConnected))) await this.disconnect();
  }

  protected async disconnect(): Promise<void> {
    if (!this.connected) return;
    this.connected = false;
    try {
      await this.instance?.disconnect();
    } catch (err) {
      this.logFailure('disconnect', err);
    }
  }

  /** Refused before it ran: record the error, go Closing, never connect. */
  private async fail(message: string): Promise<void> {
    this.phase = 'bad';
    this.ctx.log(`${this.ctx.backPath}: ${message}`);
    await this.recordFatal(message);
  }

  /** Closed and offline: Linux's device_unregister. The record stays until the dir goes. */
  private async finish(): Promise<void> {
    if (this.phase === 'finished') return;
    this.phase = 'finished';
    this.unfollowPeer();
    await this.disconnect();
    await this.removeInstance();
  }

  /** The directory is gone, or we are shutting down: release everything; no store writes. */
  async destroy(): Promise<void> {
    await this.stopStepping();
    if (this.phase === 'finished') return;
    this.phase = 'finished';
    await this.disconnect();
    await this.removeInstance();
  }

  /** Graceful stop (backend shutting down while the device stays): disconnect, write Closed. */
  async shutdown(): Promise<void> {
    const wasFinished = this.phase === 'finished';
    await this.destroy();
    if (!wasFinished) await switchState(this.ctx.client, this.ctx.backPath, XenbusStateClosed).catch((err: unknown) => this.ctx.log(`${this.ctx.backPath}: ${errMsg(err)}`));
  }

  describe(): string {
    return `${this.ctx.backPath} ${this.phase}${this.connected ? ' connected' : ''}`;
  }
}
