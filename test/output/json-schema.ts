// A validator for the subset of JSON Schema 2020-12 that schema/dropwatch-event.schema.json uses; unknown keywords throw,
// so the schema cannot quietly grow past what this checks.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

type Schema = { [k: string]: unknown };

const KNOWN = new Set([
  '$schema',
  '$id',
  '$defs',
  '$ref',
  'title',
  'description',
  'type',
  'const',
  'enum',
  'oneOf',
  'properties',
  'required',
  'additionalProperties',
  'pattern',
  'minimum',
  'maximum',
  'format',
]);

export const SCHEMA_PATH = join(process.cwd(), 'schema/dropwatch-event.schema.json');

export function loadEventSchema(): Schema {
  return JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as Schema;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** Returns the list of problems (empty when valid), each with a JSON-pointer-ish path. */
export function validate(root: Schema, value: unknown): string[] {
  const errors: string[] = [];
  const resolve = (ref: string): Schema => {
    if (!ref.startsWith('#/')) throw new Error(`unsupported $ref ${ref}`);
    let node: unknown = root;
    for (const part of ref.slice(2).split('/')) node = (node as Schema)[part];
    if (typeof node !== 'object' || node === null) throw new Error(`dangling $ref ${ref}`);
    return node as Schema;
  };
  const check = (schema: Schema, v: unknown, path: string, out: string[]): void => {
    for (const k of Object.keys(schema)) if (!KNOWN.has(k)) throw new Error(`schema keyword ${k} not supported`);
    if (typeof schema.$ref === 'string') check(resolve(schema.$ref), v, path, out);
    if (schema.type !== undefined) {
      const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
      const t = typeOf(v);
      if (!types.includes(t) && !(t === 'integer' && types.includes('number')))
        out.push(`${path}: ${JSON.stringify(v)} is ${t}, expected ${types.join('|')}`);
    }
    if ('const' in schema && JSON.stringify(schema.const) !== JSON.stringify(v))
      out.push(`${path}: expected ${JSON.stringify(schema.const)}, got ${JSON.stringify(v)}`);
    if (Array.isArray(schema.enum) && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(v)))
      out.push(`${path}: ${JSON.stringify(v)} not in ${JSON.stringify(schema.enum)}`);
    if (typeof v === 'string') {
      if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(v))
        out.push(`${path}: ${JSON.stringify(v)} does not match ${schema.pattern}`);
      if (schema.format === 'date-time' && (!DATE_TIME.test(v) || Number.isNaN(Date.parse(v))))
        out.push(`${path}: ${JSON.stringify(v)} is not an RFC 3339 date-time`);
    }
    if (typeof v === 'number') {
      if (typeof schema.minimum === 'number' && v < schema.minimum) out.push(`${path}: ${v} < ${schema.minimum}`);
      if (typeof schema.maximum === 'number' && v > schema.maximum) out.push(`${path}: ${v} > ${schema.maximum}`);
    }
    if (typeOf(v) === 'object') {
      const obj = v as Record<string, unknown>;
      const props = (schema.properties ?? {}) as Record<string, Schema>;
      for (const r of (schema.required ?? []) as string[]) if (!(r in obj)) out.push(`${path}: missing ${r}`);
      for (const [k, val] of Object.entries(obj)) {
        if (props[k]) check(props[k], val, `${path}/${k}`, out);
        else if (schema.additionalProperties === false) out.push(`${path}: unexpected property ${k}`);
      }
    }
    if (Array.isArray(schema.oneOf)) {
      const passing = (schema.oneOf as Schema[]).map((s) => {
        const sub: string[] = [];
        check(s, v, path, sub);
        return sub;
      });
      const ok = passing.filter((p) => p.length === 0).length;
      if (ok !== 1)
        out.push(
          ok === 0
            ? `${path}: matches none of oneOf (${passing.map((p) => p[0]).join('; ')})`
            : `${path}: matches ${ok} branches of oneOf`,
        );
    }
  };
  check(root, value, '', errors);
  return errors;
}
