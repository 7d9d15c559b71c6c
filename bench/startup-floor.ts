// The least a dropwatch-shaped program does before it can exit: parse argv with commander and prompt with readline,
// nothing of ours. The startup bench times it as a second anchor, the part of start-up fixed by node and our
// dependency choices.
import { Command } from 'commander';
import { createInterface } from 'node:readline';

new Command().option('-l, --lmethod <method>', 'symbol lookup method', 'kas').parse(process.argv);
const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: 'dropwatch> ' });
rl.prompt();
rl.on('line', (line) => {
  if (line.trim() !== 'exit') return;
  process.stdout.write('Shutting down ...\n');
  process.exit(0);
});
rl.on('close', () => process.exit(0));
