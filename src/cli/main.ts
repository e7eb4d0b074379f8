/**
 * `xenpv`: thin commands over the toolstack, in xl's words and formats.
 * Each command lives in its own file under commands/ and registers itself here.
 */
import { Command, CommanderError } from 'commander';
import { XenpvError } from '../base/index.js';
import { commands } from './commands/index.js';

export function buildProgram(): Command {
  const program = new Command('xenpv')
    .description("Xen's paravirtual split-driver I/O in TypeScript")
    .showHelpAfterError()
    .exitOverride();
  for (const register of commands) register(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof XenpvError) {
      process.stderr.write(`xenpv: ${err.message}\n`);
      process.exitCode = 1;
      return;
    }
    throw err;
  }
}
