/**
 * Built-in guest programs, `kernel = "builtin:<name>"`. Each is a small module with one
 * default-exported `main(ctx)`; the list grows with the issues.
 */
import type { GuestProgram } from '../program.js';
import crash from './crash.js';
import evtchnEcho from './evtchn-echo.js';
import fio from './fio.js';
import idle from './idle.js';
import ping from './ping.js';
import shell from './shell.js';
import shutdown from './shutdown.js';
import { udpRecv, udpSend } from './udp-stream.js';

export const builtinPrograms: Readonly<Record<string, GuestProgram>> = {
  idle,
  'evtchn-echo': evtchnEcho,
  fio,
  shutdown,
  shell,
  crash,
  ping,
  'udp-send': udpSend,
  'udp-recv': udpRecv,
};
