#!/usr/bin/env node
// One entry for xenstore, xenstore-read, xenstore-ls, ...: the mode is taken from the name it
// was called by, as Xen's own multi-call client does.
import { xenstoreMain } from '../dist/cli/xenstore-tools.js';

process.exitCode = await xenstoreMain(process.argv[1] ?? 'xenstore', process.argv.slice(2));
