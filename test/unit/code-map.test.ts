import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';

// The README's map of the code must follow the tree: every module named, no name that is gone.
const root = new URL('../../', import.meta.url).pathname;
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const map = readme.slice(readme.indexOf('### Map of the code'));
const block = map.slice(map.indexOf('```'), map.indexOf('```', map.indexOf('```') + 3));

const files = (dir: string): string[] =>
  readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? files(join(dir, entry.name)) : /\.(ts|cjs)$/.test(entry.name) ? [join(dir, entry.name)] : [],
  );
const modules = [...files('shared'), ...files('scripts')];

describe("README's map of the code", () => {
  it.each(modules)('names %s', (path) => {
    expect(block).toContain(basename(path));
  });

  it('names only modules that exist', () => {
    const named = block.match(/[\w-]+\.(?:ts|cjs)/g) ?? [];
    const existing = new Set([...modules, ...files('functions')].map((path) => basename(path)));
    expect(named.filter((name) => !existing.has(name))).toEqual([]);
  });

  it('names every function', () => {
    for (const fn of readdirSync(join(root, 'functions'))) expect(block).toContain(`${fn}/`);
  });

  it('keeps shared/ to a few platform files at its top', () => {
    const top = readdirSync(join(root, 'shared')).filter((name) => name.endsWith('.ts'));
    expect(top.length).toBeLessThanOrEqual(8);
  });

  it('keeps every module under 400 lines', () => {
    const long = [...modules, ...files('functions')].filter(
      (path) => readFileSync(join(root, path), 'utf8').split('\n').length > 400,
    );
    expect(long).toEqual([]);
  });
});
