#!/usr/bin/env node
// One entry for xenstore, xenstore-read, xenstore-ls, ...: the mode is taken from the name it
// was called by, as Xen's own multi-call client does. The name is passed without its
// directory: what a shell user types (`xenstore-read`) is what Xen's tool prints back.
import { basename } from 'node:path';
import { xenstoreMain } from '../dist/cli/xenstore-tools.js';

process.exitCode = await xenstoreMain(basename(process.argv[1] ?? 'xenstore'), process.argv.slice(2));
