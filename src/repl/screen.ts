// The prompt's screen: at a terminal, a line printed while the prompt shows goes above it, and the prompt stays.
import * as readline from 'node:readline';
import type { Writable } from 'node:stream';
import type { SessionOutput } from '../engine/types.js';

export const PROMPT = 'dropwatch> ';

/** The streams the prompt writes to, and whether a person is at a terminal. */
export interface ScreenIO {
  output: Writable;
  errorOutput: Writable;
  /** A person at a terminal: lines printed while the prompt shows go above it. */
  interactive: boolean;
  /** Where JSON mode sends dropwatch's chatter; defaults to output. */
  messageOutput?: Writable;
}

/** The prompt and the lines printed around it: at a terminal, a line printed while the prompt shows goes above it. */
export function promptScreen(io: ScreenIO, rl: readline.Interface) {
  let promptShown = false;
  rl.on('line', () => (promptShown = false));
  const messages = io.messageOutput ?? io.output;
  const write = (stream: Writable, line: string) => {
    if (io.interactive && promptShown && stream === io.output) {
      readline.clearLine(io.output, 0);
      readline.cursorTo(io.output, 0);
      io.output.write(`${line}\n`);
      rl.prompt(true);
    } else {
      stream.write(`${line}\n`);
    }
  };
  const output: SessionOutput = {
    data: (line) => write(io.output, line),
    message: (line) => write(messages, line),
    error: (line) => write(io.errorOutput, line),
  };
  return {
    output,
    messages,
    showPrompt: () => {
      if (io.interactive) {
        promptShown = true;
        rl.prompt();
      } else {
        // GNU readline prints the prompt even when stdin is a pipe; dropwatch's piped output has it, so ours does too.
        messages.write(PROMPT);
      }
    },
    promptGone: () => (promptShown = false),
  };
}
