/** Every `xenpv` subcommand, one module each; add a new one to this list. */
import type { Command } from 'commander';
import { registerAbi } from './abi.js';
import { registerBench } from './bench.js';
import { registerConsoled } from './consoled.js';
import { registerDemo } from './demo.js';
import { registerDevices } from './devices.js';
import { registerDomain } from './domain.js';
import { registerHost } from './host.js';
import { registerStats } from './stats.js';
import { registerXenstore } from './xenstore.js';
import { registerXenstored } from './xenstored.js';

export const commands: ReadonlyArray<(program: Command) => void> = [registerAbi, registerDemo, registerBench, registerXenstore, registerXenstored, registerConsoled, registerHost, registerDomain, registerDevices, registerStats];
