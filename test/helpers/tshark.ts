// tshark (Wireshark's command line) as a second, independent reading of the pcaps dwdump writes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

export function tsharkAvailable(): boolean {
  return spawnSync('tshark', ['-v'], { stdio: 'ignore' }).status === 0;
}

/**
 * One row per frame that passes `displayFilter`: each field's text as tshark prints it ('' where the frame has none;
 * a field that occurs several times in one frame is joined with commas).
 */
export function tsharkFields(
  path: string,
  fields: readonly string[],
  displayFilter = 'net_dm',
): Record<string, string>[] {
  const r = spawnSync(
    'tshark',
    ['-r', path, '-Y', displayFilter, '-T', 'fields', '-E', 'separator=/t', ...fields.flatMap((f) => ['-e', f])],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, `tshark -r ${path} failed: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const cols = l.split('\t');
      return Object.fromEntries(fields.map((f, i) => [f, cols[i] ?? '']));
    });
}
