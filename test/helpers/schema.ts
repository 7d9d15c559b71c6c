// The JSON event schema compiled once with Ajv (draft 2020-12, strict), as a user would check dropwatch's output.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { projectRoot } from './paths.js';

export const SCHEMA_PATH = join(projectRoot, 'schema/dropwatch-event.schema.json');

const ajv = new Ajv2020({ strict: true, allErrors: true });
// ajv-formats is CommonJS: under NodeNext its default export is the module object, whose .default is the plugin.
addFormats.default(ajv);
const check = ajv.compile(JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as object);

function describe(e: ErrorObject): string {
  const where = e.instancePath || '/';
  if (e.keyword === 'additionalProperties')
    return `${where}: unexpected property ${String(e.params.additionalProperty)}`;
  if (e.keyword === 'enum' || e.keyword === 'const')
    return `${where}: ${e.message} ${JSON.stringify(e.params.allowedValues ?? e.params.allowedValue)}`;
  return `${where}: ${e.message}`;
}

/** The problems with one event, one line each (empty when it is valid). */
export function validateEvent(value: unknown): string[] {
  if (check(value)) return [];
  // "must match then schema" only repeats that the branch for this type failed; its own errors say why.
  return (check.errors ?? []).filter((e) => e.keyword !== 'if').map(describe);
}

/** A JSON Lines run's events, each line parsed and asserted valid against the schema. */
export function validEvents<T>(stdout: string): T[] {
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const event: unknown = JSON.parse(line);
      const errors = validateEvent(event);
      if (errors.length > 0) throw new Error(`${line}: ${errors.join('; ')}`);
      return event as T;
    });
}
