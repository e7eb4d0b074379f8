/**
 * XenBus: the device-independent half of every split driver — paths as libxl writes them,
 * the state machine, backend and frontend buses, typed feature keys, hot-plug and unplug.
 * Every function takes its xenstore client as a parameter (constructor injection).
 */
export * from './paths.js';
export * from './state.js';
export * from './keys.js';
export * from './toolstack.js';
export { Reactor, RateBudget, pumpWatch } from './reactor.js';
export { BackendDevice, errMsg, type BackendContext, type BackendDriver, type BackendInstance, type BackendDeviceOptions, type BackendPhase } from './backend-device.js';
export { BackendWatcher, type BackendWatcherOptions } from './backend.js';
export {
  FrontendDevice,
  type DisconnectReason,
  type FrontendContext,
  type FrontendDriver,
  type FrontendInstance,
  type FrontendDeviceOptions,
  type FrontendPhase,
} from './frontend-device.js';
export { FrontendWatcher, type FrontendWatcherOptions } from './frontend.js';
