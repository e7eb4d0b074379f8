/**
 * What a backend device record and a frontend device record share (backend-device.ts,
 * frontend-device.ts): each follows the other end's `state` node through a bounded watch,
 * steps one at a time through a Reactor, budgets its (re)connect cycles against a hostile
 * peer, answers a peer violation with Linux's xenbus_dev_fatal, and releases its driver
 * instance exactly once. Only the state tables differ, and they stay in the subclasses.
 */
import { XenbusStateInitialising, XenbusStateUnknown, type XenbusStateValue } from '../abi/io/xenbus.js';
import { errorCode } from '../base/index.js';
import type { XsClient, XsWatch } from '../xenstore/client/index.js';
import { RateBudget, Reactor, pumpWatch } from './reactor.js';
import { deviceFatal, readState, stateValue } from './state.js';

/** Why a frontend instance is told to disconnect; a backend instance is not told. */
export type DisconnectReason = 'backend-closed' | 'backend-restart' | 'reinitialise' | 'error' | 'removed' | 'shutdown';

/** The part of a driver instance the shared teardown calls. */
export interface RemovableInstance {
  remove?(): Promise<void> | void;
}

/** What both ends' contexts (BackendContext, FrontendContext) hold. */
export interface MachineContext {
  readonly client: XsClient;
  readonly backPath: string;
  readonly frontPath: string;
  /** Where a fatal error is recorded (xenbus_dev_fatal's error node, under our home). */
  readonly errorPath: string;
  log(msg: string): void;
}

export interface MachineOptions {
  /** Which end we are: our own directory is the only `state` we write; the other we follow. */
  readonly side: 'back' | 'front';
  /** How a step's thrown error is written to the log. */
  readonly describeError: (err: unknown) => string;
  /** Connect cycles allowed per window before the peer is given up. */
  readonly budget: { readonly max: number; readonly windowMs: number };
}

interface MachineEnds {
  readonly client: XsClient;
  readonly ownPath: string;
  readonly peerPath: string;
  readonly errorPath: string;
  log(msg: string): void;
}

export abstract class DeviceMachine<I extends RemovableInstance> {
  protected instance: I | undefined;
  private watch: XsWatch | undefined;
  private readonly reactor: Reactor;
  protected readonly budget: RateBudget;
  /** The driver's `connect` succeeded and has not been undone. */
  protected connected = false;
  /** Times the driver connected, for tests and stats. */
  connects = 0;

  private readonly ends: MachineEnds;

  constructor(ctx: MachineContext, options: MachineOptions) {
    const back = options.side === 'back';
    const ends: MachineEnds = {
      client: ctx.client,
      ownPath: back ? ctx.backPath : ctx.frontPath,
      peerPath: back ? ctx.frontPath : ctx.backPath,
      errorPath: ctx.errorPath,
      log: (msg) => ctx.log(msg),
    };
    this.ends = ends;
    this.reactor = new Reactor(() => this.step(), (err) => ends.log(`${ends.ownPath}: ${options.describeError(err)}`));
    this.budget = new RateBudget(options.budget.max, options.budget.windowMs);
  }

  get isConnected(): boolean {
    return this.connected;
  }

  kick(): void {
    this.reactor.kick();
  }

  idle(): Promise<void> {
    return this.reactor.idle();
  }

  protected abstract step(): Promise<void>;

  /** Release what the driver set up; `reason` is for frontends (backends ignore it). */
  protected abstract disconnect(reason: DisconnectReason): Promise<void>;

  /** Start stepping on every change of the peer's state. */
  protected async followPeer(): Promise<void> {
    const { client, peerPath } = this.ends;
    // At most a few pending events per state watch (R7); the lost marker is one more kick.
    this.watch = client.watch(`${peerPath}/state`, undefined, { capacity: 4 });
    pumpWatch(this.watch, () => this.kick());
    await this.watch.ready;
  }

  /** Our own state for a step; undefined when our directory went (the bus destroys us). */
  protected async readOwnState(): Promise<XenbusStateValue | undefined> {
    const own = await readState(this.ends.client, this.ends.ownPath);
    return own.kind === 'missing' ? undefined : (stateValue(own) ?? XenbusStateUnknown);
  }

  /** The peer's state for a step; undefined when it wrote garbage (answered here). */
  protected async readPeerState(peerName: string): Promise<XenbusStateValue | undefined> {
    const peer = await readState(this.ends.client, this.ends.peerPath);
    if (peer.kind !== 'invalid') return stateValue(peer);
    await this.protocolError(`${peerName} state '${peer.raw}' is not a XenbusState`);
    return undefined;
  }

  /** Answer a peer violation: stop using what it gave us, record the error, go Closing. */
  protected async protocolError(message: string): Promise<void> {
    this.ends.log(`${this.ends.ownPath}: ${message}`);
    await this.disconnect('error');
    await this.recordFatal(message);
  }

  /** Linux's xenbus_dev_fatal for our end: the error node, then Closing. */
  protected recordFatal(message: string): Promise<void> {
    return deviceFatal(this.ends.client, this.ends.ownPath, this.ends.errorPath, message);
  }

  /** Log a failure of one of the driver's own calls (`what`: disconnect, remove...). */
  protected logFailure(what: string, err: unknown): void {
    this.ends.log(`${this.ends.ownPath}: ${what}: ${errMsg(err)}`);
  }

  /** Stop following the peer; callable from inside a step (nothing is awaited). */
  protected unfollowPeer(): void {
    this.watch?.dispose();
  }

  /** No further steps; waits for a running one and ends the watch. */
  protected async stopStepping(): Promise<void> {
    this.reactor.dispose();
    await this.reactor.idle();
    this.unfollowPeer();
  }

  /** Give the instance up for good; once, whatever the driver's `remove` throws. */
  protected async removeInstance(): Promise<void> {
    const inst = this.instance;
    this.instance = undefined;
    try {
      await inst?.remove?.();
    } catch (err) {
      this.logFailure('remove', err);
    }
  }
}

/**
 * A state node left by an earlier incarnation of our end: anything but a fresh Initialising
 * (or nothing). The new instance first takes the peer through Closing/Closed.
 */
export function isLeftOver(prior: XenbusStateValue | undefined): boolean {
  return prior !== XenbusStateInitialising && prior !== XenbusStateUnknown;
}

export function errMsg(err: unknown): string {
  const code = errorCode(err);
  const msg = err instanceof Error ? err.message : String(err);
  return code === undefined || msg.startsWith(code) ? msg : `${code}: ${msg}`;
}
