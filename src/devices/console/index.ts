/**
 * The PV console: `ConsoleFront` (guest), `ConsoleBack` (dom0, one console), the xenbus
 * drivers for secondary consoles, and `ConsoleDaemon` (xenconsoled).
 */
export * from './protocol.js';
export { OutputBuffer } from './buffer.js';
export { ConsoleBack, ConsoleStream, type ConsoleBackOptions, type ConsoleBackStats } from './back.js';
export { consoleBackendDriver, type ConsoleBackendHooks } from './back-driver.js';
export { ConsoleFront, consoleFrontendDriver, type ConsoleFrontOptions, type ConsoleFrontStats, type ConsoleFrontDriverOptions } from './front.js';
export { ConsoleDaemon, type ConsoleDaemonOptions, type ConsoleInfo } from './daemon.js';
export { ConsoleAttachServer, consoleSocket, DEFAULT_ATTACH_WAIT_MS, MAX_REQUEST, type ConsoleServerOptions } from './attach-server.js';
export { openConsoleSocket, callConsoleDaemon, type OpenedConsole } from './attach-client.js';
