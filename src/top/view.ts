// The live view's Ink component: draws the controller's frame, follows the terminal's size, and passes keys back.
// React.createElement rather than JSX: the view is a list of lines, and plain .ts keeps one compiler setup for all.
import { createElement as h, useEffect, useState, type ReactElement } from 'react';
import { Box, Text, useInput, useStdout, type Key, type TextProps } from 'ink';
import type { KeyPress, TopController } from './controller.js';
import type { Segment, Size, Tone } from './layout.js';

export interface TopAppProps {
  controller: TopController;
  /** Colour and emphasis: only on a terminal and without NO_COLOR; without it the text alone says everything. */
  colour: boolean;
}

const TONES: Record<Tone, TextProps> = {
  title: { bold: true },
  heading: { bold: true, underline: true },
  lost: { color: 'red', bold: true },
  selected: { inverse: true },
  dim: { dimColor: true },
  error: { color: 'red' },
  notice: { color: 'yellow' },
  paused: { color: 'yellow', inverse: true },
  spark: { color: 'green' },
};

/** The Text properties for a tone: none at all without colour. */
export function toneProps(tone: Tone | undefined, colour: boolean): TextProps {
  return colour && tone ? TONES[tone] : {};
}

/** Ink's key event as the controller reads it. */
export function keyPress(input: string, key: Key): KeyPress {
  return {
    input,
    up: key.upArrow,
    down: key.downArrow,
    pageUp: key.pageUp,
    pageDown: key.pageDown,
    home: key.home,
    end: key.end,
    enter: key.return,
    escape: key.escape,
    backspace: key.backspace || key.delete,
    ctrl: key.ctrl,
  };
}

function sizeOf(stdout: NodeJS.WriteStream): Size {
  return { columns: stdout.columns || 80, rows: stdout.rows || 24 };
}

const BLANK: Segment = { text: ' ' };
const blank = (line: readonly Segment[]): boolean => line.every((s) => s.text === '');

function segment(seg: Segment, i: number, colour: boolean): ReactElement {
  return h(Text, { key: i, ...toneProps(seg.tone, colour) }, seg.text);
}

export function TopApp({ controller, colour }: TopAppProps): ReactElement {
  const { stdout } = useStdout();
  const [size, setSize] = useState(() => sizeOf(stdout));
  const [, setVersion] = useState(0);
  useEffect(() => controller.subscribe(() => setVersion((v) => v + 1)), [controller]);
  useEffect(() => {
    const resized = () => setSize(sizeOf(stdout));
    stdout.on('resize', resized);
    return () => {
      stdout.off('resize', resized);
    };
  }, [stdout]);
  useInput((input, key) => controller.key(keyPress(input, key)));
  const { lines } = controller.frame(size);
  return h(
    Box,
    { flexDirection: 'column' },
    // A blank line is one space: an empty Text would take no height and pull the footer up.
    ...lines.map((line, i) =>
      h(Text, { key: i, wrap: 'truncate-end' }, ...(blank(line) ? [BLANK] : line).map((s, j) => segment(s, j, colour))),
    ),
  );
}
