/** The import graph of src/ has no cycles, type-only imports included (they still tie two modules together). */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers.js';

const SRC = join(REPO_ROOT, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Relative specifiers of static `import`/`export ... from` and `import('...')`, resolved to .ts paths. */
function localImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]);
  return specs.map((s) => resolve(dirname(file), s.replace(/\.js$/, '.ts')));
}

function cycles(): string[][] {
  const graph = new Map(sources(SRC).map((f) => [f, localImports(f)]));
  const state = new Map<string, 'open' | 'done'>();
  const found: string[][] = [];
  const stack: string[] = [];
  const visit = (f: string): void => {
    if (state.get(f) === 'done' || !graph.has(f)) return;
    if (state.get(f) === 'open') {
      found.push(stack.slice(stack.indexOf(f)).concat(f).map((p) => relative(SRC, p)));
      return;
    }
    state.set(f, 'open');
    stack.push(f);
    for (const g of graph.get(f)!) visit(g);
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) visit(f);
  return found;
}

describe('src/ import graph', () => {
  it('has no cycles', () => {
    expect(cycles()).toEqual([]);
  });
});
