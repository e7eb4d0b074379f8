import type { Command } from 'commander';

export function registerAbi(program: Command): void {
  program
    .command('abi')
    .description("print Xen's public ABI as xenpv knows it: every struct layout and constant")
    .option('--json', 'as one JSON object')
    .action(() => {
      throw new Error('not yet');
    });
}
