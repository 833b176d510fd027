import { HARDWARE_SPEC } from '../config/hardware.js';
import { MODEL_SPEC, TRAINER_SPEC } from '../config/model.js';
import type { FieldSpec } from '../config/schema.js';
import { SEARCH_KEYS, SearchKey, SearchKeyName } from '../config/space.js';
import { SWEEP_SPEC } from '../config/sweepfile.js';

/**
 * JSON Schemas (draft 2020-12) for model, hardware and sweep files, generated from the FieldSpecs the loader validates
 * with, so that an editor's completion and checks agree with `parasweep`. `npm run schemas` writes them to schemas/;
 * test/schema.test.ts fails when the committed files are out of date.
 */

export type JsonSchema = Record<string, unknown>;

const DRAFT = 'https://json-schema.org/draft/2020-12/schema';

/** `8..1024:8`, `1..64:*2`, `8, 128` or a single number, as ranges.ts parses them. */
const RANGE_PATTERN = '^\\s*\\d+\\s*(\\.\\.\\s*\\d+\\s*(:\\s*\\*?\\s*\\d+\\s*)?|(,\\s*\\d+\\s*)*)$';

function fieldSchema(spec: FieldSpec): JsonSchema {
  const out: JsonSchema = {};
  switch (spec.kind) {
    case 'int':
      out.type = 'integer';
      if (spec.min !== undefined) out.minimum = spec.min;
      if (spec.max !== undefined) out.maximum = spec.max;
      break;
    case 'number':
      out.type = 'number';
      if (spec.min !== undefined) out.minimum = spec.min;
      if (spec.max !== undefined) out.maximum = spec.max;
      if (spec.exclusiveMin !== undefined) out.exclusiveMinimum = spec.exclusiveMin;
      break;
    case 'string':
      out.type = 'string';
      break;
    case 'enum':
      // Aliases are accepted by the loader (bf16 for bfloat16, 1 for OPTIMIZER_STATES), so the schema accepts them.
      out.enum = [...spec.values, ...Object.keys(spec.aliases ?? {}).filter((alias) => !spec.values.includes(alias))];
      break;
    case 'bool':
      out.type = 'boolean';
      break;
    case 'object': {
      out.type = 'object';
      out.properties = Object.fromEntries(Object.entries(spec.fields).map(([key, field]) => [key, fieldSchema(field)]));
      const required = Object.entries(spec.fields)
        .filter(([, field]) => !field.optional && !('default' in field && field.default !== undefined) && field.kind !== 'any')
        .map(([key]) => key);
      if (required.length > 0) out.required = required;
      out.additionalProperties = false;
      break;
    }
    case 'any':
      break;
  }
  if ('default' in spec && spec.default !== undefined) out.default = spec.default;
  // The loader treats null (`fp8: null`, `key:` with no value) as absent, so an optional key may be null.
  if (spec.optional || ('default' in spec && spec.default !== undefined)) {
    if (typeof out.type === 'string') out.type = [out.type, 'null'];
    if (Array.isArray(out.enum)) out.enum = [...out.enum, null];
  }
  return out;
}

/** One search key's value: a scalar, a list, or (numbers only) a range string. */
function searchValueSchema(key: SearchKeyName, spec: SearchKey): JsonSchema {
  const description = `${spec.describe} (--${spec.flag})`;
  switch (spec.kind) {
    case 'int': {
      const item = { type: 'integer', minimum: 1 };
      return { description, anyOf: [item, { type: 'array', items: item, minItems: 1 }, { type: 'string', pattern: RANGE_PATTERN }] };
    }
    case 'bool':
      return { description, anyOf: [{ type: 'boolean' }, { type: 'array', items: { type: 'boolean' }, minItems: 1 }] };
    case 'enum': {
      const item = { enum: [...spec.values, ...Object.keys(spec.aliases ?? {})] };
      return { description, anyOf: [item, { type: 'array', items: item, minItems: 1 }] };
    }
  }
}

function searchProperties(): Record<string, JsonSchema> {
  return Object.fromEntries(
    (Object.entries(SEARCH_KEYS) as Array<[SearchKeyName, SearchKey]>).map(([key, spec]) => [key, searchValueSchema(key, spec)]),
  );
}

const stringOrList = { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1, uniqueItems: true }] };

export function jsonSchemas(): Record<'model' | 'hardware' | 'sweep', JsonSchema> {
  const model: JsonSchema = {
    $schema: DRAFT,
    title: 'parasweep model file',
    description: "A model and its trainer settings (the LLM Parallelism Explorer PoC's schema, extended), with optional search ranges.",
    type: 'object',
    properties: { model: fieldSchema(MODEL_SPEC), trainer: fieldSchema({ ...TRAINER_SPEC, optional: true } as FieldSpec), ...searchProperties() },
    required: ['model'],
    additionalProperties: false,
  };
  const hardware: JsonSchema = {
    $schema: DRAFT,
    title: 'parasweep hardware file',
    description: 'A GPU and its node, from published specifications.',
    ...fieldSchema(HARDWARE_SPEC),
  };
  const sweepSpec = fieldSchema(SWEEP_SPEC) as JsonSchema & { properties: Record<string, JsonSchema> };
  sweepSpec.properties.search = { type: 'object', properties: searchProperties(), additionalProperties: false };
  sweepSpec.properties.hardware = { description: 'bundled hardware names or paths; the sweep runs once per entry', ...stringOrList };
  sweepSpec.properties.overrides = { description: 'Hydra-style overrides, e.g. model.seq_length=8192', ...stringOrList };
  const sweep: JsonSchema = {
    $schema: DRAFT,
    title: 'parasweep sweep file',
    description: 'A saved sweep: a model, hardware, search ranges, overrides, and how to filter and rank the result.',
    ...sweepSpec,
  };
  return { model, hardware, sweep };
}

/** The file text for each schema, as committed under schemas/. */
export function jsonSchemaFiles(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(jsonSchemas()).map(([name, schema]) => [`${name}.schema.json`, JSON.stringify(schema, null, 2) + '\n']),
  );
}
