// What start-up loads: --version and --help load only the command line's modules; the run's machinery (session,
// REPL, filter parser, output, symbols, backends) loads once a run is asked for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BIN } from '../helpers/cli.js';
import { canRunKernelTests } from '../helpers/kernel.js';
import { ownModules, resolvedModules } from '../helpers/modules.js';

/** Modules a run needs and printing the version or the help must not load. */
const RUN_MACHINERY =
  /^(engine\/|repl\/|filter\/|packet\/|symbols\/|aggregate\/(?!keys\.js$)|output\/(sink|format|symbols|json|text)|netlink\/|(netdm|tracefs|bpf)\/(?!source\.js$))/;

for (const flag of ['--version', '--help']) {
  test(`${flag} loads no engine, REPL, filter, output or backend module`, () => {
    const own = ownModules(resolvedModules([BIN, flag]));
    assert.ok(own.includes('cli/argv.js'), 'the hook saw our own modules');
    assert.deepEqual(
      own.filter((m) => RUN_MACHINERY.test(m)),
      [],
    );
  });
}

test('the prompt does load the run machinery: the check above can fail', { skip: canRunKernelTests() }, () => {
  const own = ownModules(resolvedModules([BIN, '-l', 'kas'], 'exit\n'));
  for (const m of ['engine/session.js', 'repl/index.js', 'output/sink.js']) assert.ok(own.includes(m), m);
});

test(
  'the prompt without a filter or JSON loads neither the filter language nor the JSON writer',
  { skip: canRunKernelTests() },
  () => {
    const plain = ownModules(resolvedModules([BIN, '-l', 'kas'], 'exit\n'));
    const late = (m: string) => m === 'filter/parser.js' || m === 'engine/filter.js' || m === 'output/json.js';
    assert.deepEqual(plain.filter(late), []);
    // Asked for, they load: the check above can fail.
    const asked = ownModules(
      resolvedModules([BIN, '-l', 'kas', '-f', 'json', '--filter', 'reason == NO_SOCKET'], 'exit\n'),
    );
    assert.deepEqual([...new Set(asked.filter(late))].sort(), [
      'engine/filter.js',
      'filter/parser.js',
      'output/json.js',
    ]);
  },
);
