import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseYamlText } from '../src/config/load.js';
import { jsonSchemaFiles, jsonSchemas, JsonSchema } from '../src/schema/json.js';
import { REPO_ROOT } from './helpers.js';

/**
 * The subset of JSON Schema 2020-12 the generated schemas use (type, enum, properties, required,
 * additionalProperties: false, anyOf, items, minItems, uniqueItems, minimum, maximum, exclusiveMinimum, pattern).
 * Returns the paths that fail.
 */
function check(schema: JsonSchema, value: unknown, path = '$'): string[] {
  const errors: string[] = [];
  if (schema.anyOf) {
    const branches = (schema.anyOf as JsonSchema[]).map((branch) => check(branch, value, path));
    if (branches.every((b) => b.length > 0)) errors.push(`${path}: matches no alternative`);
    return errors;
  }
  if (schema.enum && !(schema.enum as unknown[]).includes(value)) errors.push(`${path}: ${JSON.stringify(value)} not in enum`);
  const types = schema.type === undefined ? undefined : ([] as string[]).concat(schema.type as string | string[]);
  if (types?.includes('null') && value === null) return errors;
  const type = types?.find((t) => t !== 'null');
  const isObject = typeof value === 'object' && value !== null && !Array.isArray(value);
  if (type === 'integer' && !Number.isInteger(value)) return [`${path}: not an integer`];
  if (type === 'number' && typeof value !== 'number') return [`${path}: not a number`];
  if (type === 'string' && typeof value !== 'string') return [`${path}: not a string`];
  if (type === 'boolean' && typeof value !== 'boolean') return [`${path}: not a boolean`];
  if (type === 'array' && !Array.isArray(value)) return [`${path}: not an array`];
  if (type === 'object' && !isObject) return [`${path}: not an object`];
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < (schema.minimum as number)) errors.push(`${path}: below minimum`);
    if (schema.maximum !== undefined && value > (schema.maximum as number)) errors.push(`${path}: above maximum`);
    if (schema.exclusiveMinimum !== undefined && !(value > (schema.exclusiveMinimum as number))) errors.push(`${path}: not above exclusiveMinimum`);
  }
  if (typeof value === 'string' && schema.pattern && !new RegExp(schema.pattern as string).test(value)) errors.push(`${path}: pattern`);
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < (schema.minItems as number)) errors.push(`${path}: too few items`);
    if (schema.uniqueItems && new Set(value.map((v) => JSON.stringify(v))).size !== value.length) errors.push(`${path}: duplicate items`);
    if (schema.items) value.forEach((item, i) => errors.push(...check(schema.items as JsonSchema, item, `${path}[${i}]`)));
  }
  if (isObject && schema.properties) {
    const properties = schema.properties as Record<string, JsonSchema>;
    for (const key of (schema.required as string[] | undefined) ?? []) if (!(key in value)) errors.push(`${path}.${key}: required`);
    for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
      if (properties[key]) errors.push(...check(properties[key], item, `${path}.${key}`));
      else if (schema.additionalProperties === false) errors.push(`${path}.${key}: not allowed`);
    }
  }
  return errors;
}

const yaml = (path: string) => parseYamlText(readFileSync(path, 'utf8'), path);
const yamlFiles = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.yaml')).map((f) => join(dir, f));

describe('JSON Schemas', () => {
  it('the committed schemas/ are what the field specs generate (run npm run schemas)', () => {
    for (const [name, text] of Object.entries(jsonSchemaFiles())) {
      expect(readFileSync(join(REPO_ROOT, 'schemas', name), 'utf8'), name).toBe(text);
    }
  });

  const schemas = jsonSchemas();
  const files: Array<[keyof typeof schemas, string[]]> = [
    ['model', [...yamlFiles(join(REPO_ROOT, 'configs', 'models')), ...yamlFiles(join(REPO_ROOT, 'examples', 'poc'))]],
    ['hardware', yamlFiles(join(REPO_ROOT, 'configs', 'hardware'))],
    ['sweep', yamlFiles(join(REPO_ROOT, 'configs', 'sweeps'))],
  ];
  for (const [kind, paths] of files) {
    it(`every bundled ${kind} file validates against ${kind}.schema.json`, () => {
      expect(paths.length).toBeGreaterThan(0);
      for (const path of paths) expect(check(schemas[kind], yaml(path)), path).toEqual([]);
    });
  }

  it('what the loader rejects, the schema rejects', () => {
    const model = yaml(join(REPO_ROOT, 'configs', 'models', 'llama3.1-8b.yaml')) as { model: Record<string, unknown> };
    expect(check(schemas.model, { ...model, model: { ...model.model, num_layrs: 32 } })).toEqual(['$.model.num_layrs: not allowed']);
    expect(check(schemas.model, { ...model, model: { ...model.model, hidden_size: 0 } })).toEqual(['$.model.hidden_size: below minimum']);
    expect(check(schemas.model, { ...model, model: { ...model.model, activation: 'silu' } })).toEqual(['$.model.activation: "silu" not in enum']);
    expect(check(schemas.model, { ...model, tp_range: '1..8:*2' })).toEqual([]);
    expect(check(schemas.model, { ...model, tp_range: 'x' })).toEqual(['$.tp_range: matches no alternative']);
    expect(check(schemas.sweep, { model: 'llama3.1-8b', top: { k: 0, by: 'mfu' } })).toEqual(['$.top.k: below minimum']);
    expect(check(schemas.hardware, { name: 'x' }).length).toBeGreaterThan(5);
  });
});
