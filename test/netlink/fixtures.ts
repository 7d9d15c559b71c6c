// Loads the datagrams captured from the real kernel by test/fixtures/netlink/capture.mjs.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function fixtureDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'test', 'fixtures', 'netlink');
    if (existsSync(join(candidate, 'capture.json'))) return candidate;
    dir = dirname(dir);
  }
  throw new Error('test/fixtures/netlink not found');
}

export const FIXTURES = fixtureDir();

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
