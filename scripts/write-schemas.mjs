// Writes schemas/*.schema.json from the loader's field specs (src/schema/json.ts). Run `npm run schemas` after
// changing a config field; test/schema.test.ts fails while the committed files are out of date.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jsonSchemaFiles } from '../dist/schema/json.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'schemas');
for (const [name, text] of Object.entries(jsonSchemaFiles())) {
  writeFileSync(join(dir, name), text);
  process.stdout.write(`wrote schemas/${name}\n`);
}
