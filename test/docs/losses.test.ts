// Every loss dropwatch says has one form a log reader can sum, and the man page's DIAGNOSTICS lists each of them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../helpers/paths.js';
import {
  formatLostLine,
  formatLostTotal,
  formatUntakenLine,
  formatUnwrittenLine,
  formatUnwrittenTotal,
} from '../../src/output/format.js';

/** One roff line as text: a font macro's arguments joined as roff joins them (.BI "Lost " N " drop…" → Lost N drop…). */
function roffText(line: string): string {
  const m = /^\.(BI|IB|BR|RB|IR|RI|B|I)\s+(.*)$/.exec(line);
  const args = m ? [...m[2]!.matchAll(/"([^"]*)"|(\S+)/g)].map((a) => a[1] ?? a[2] ?? '') : null;
  const text = m && args ? args.join(m[1]!.length === 1 ? ' ' : '') : line;
  return text.replace(/\\f[BIRP]/g, '').replace(/\\-/g, '-');
}

/** The DIAGNOSTICS section of man/dropwatch.1 as text, its lines joined. */
function diagnostics(): string {
  const man = readFileSync(join(projectRoot, 'man', 'dropwatch.1'), 'utf8');
  const section = man.slice(man.indexOf('.SH DIAGNOSTICS'), man.indexOf('.SH EXIT STATUS'));
  return section.split('\n').map(roffText).join(' ').replace(/\s+/g, ' ');
}

const LOSSES = [formatLostLine(7, 'WHERE'), formatUnwrittenLine(7), formatUntakenLine(7)];
const TOTALS = [formatLostTotal(7, 'WHERE'), formatUnwrittenTotal(7)];

test('each loss is one `Lost N drop events …` line a reader can sum; totals at stop are worded apart', () => {
  for (const line of LOSSES) assert.match(line, /^Lost 7 drop events /, line);
  for (const line of TOTALS) {
    assert.match(line, /^In total, 7 drop events were lost/, line);
    assert.doesNotMatch(line, /Lost \d+/, line);
  }
});

test("the man page's DIAGNOSTICS lists every loss line and every total", () => {
  const text = diagnostics();
  for (const line of [...LOSSES, ...TOTALS]) {
    // As the man page writes them: N for the count, where for the place.
    const shown = line.replace(/\b7\b/, 'N').replace('WHERE', 'where');
    assert.ok(text.includes(shown), `DIAGNOSTICS lacks: ${shown}\n${text}`);
  }
});
