// Loads the datagrams captured from the real kernel by test/fixtures/netlink/capture.mjs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixturePath } from '../helpers/paths.js';

export const FIXTURES = fixturePath('netlink');

export interface CaptureCase {
  name: string;
  seq: number;
  portId: number;
  extAck: boolean;
  capAck: boolean;
  request: string;
  datagrams: { file: string; bytes: number }[];
}

export const capture = JSON.parse(readFileSync(join(FIXTURES, 'capture.json'), 'utf8')) as {
  kernel: string;
  cases: CaptureCase[];
};

export function captured(name: string): { info: CaptureCase; datagrams: Uint8Array[]; request: Uint8Array } {
  const info = capture.cases.find((c) => c.name === name);
  if (!info) throw new Error(`no capture ${name}`);
  return {
    info,
    datagrams: info.datagrams.map((d) => new Uint8Array(readFileSync(join(FIXTURES, d.file)))),
    request: new Uint8Array(Buffer.from(info.request, 'hex')),
  };
}

export const allDatagrams = (): Uint8Array[] => capture.cases.flatMap((c) => captured(c.name).datagrams);
