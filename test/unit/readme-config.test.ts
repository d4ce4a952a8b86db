/**
 * The README's configuration table must list exactly the variables of CONFIG_VARIABLES, in order, with the same
 * flags, defaults and descriptions, so the documentation cannot drift from the loader. On failure the message
 * carries the table as it should be, ready to paste between the `config-table` markers.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CONFIG_VARIABLES } from '../../src/config/index.js';
import type { ConfigVariable } from '../../src/config/index.js';

// dist/test/unit/readme-config.test.js → the repository root.
const README = new URL('../../../README.md', import.meta.url);
const HEADER = '| Variable | Flag | Default | Description |';
const UNSET = '*(unset)*';

interface Row {
  env: string;
  flag: string;
  default: string;
  description: string;
}

/** The table as it should appear in the README. */
function expectedTable(vars: readonly ConfigVariable[]): string {
  const lines = [HEADER, '|---|---|---|---|'];
  for (const v of vars) {
    const shown = v.default === '' ? UNSET : `\`${v.default}\``;
    lines.push(`| \`${v.env}\` | \`${v.flag}\` | ${shown} | ${v.description.replaceAll('|', '\\|')} |`);
  }
  return lines.join('\n');
}

/** Cells of one markdown table row; `\|` is a literal pipe, not a separator. */
function cells(line: string): string[] {
  const inner = line.trim().replace(/^\|/, '').replace(/\|$/, '');
  return inner.split(/(?<!\\)\|/).map((c) => c.trim().replaceAll('\\|', '|'));
}

function unquote(cell: string): string {
  if (cell === UNSET) return '';
  const m = /^`([^`]*)`$/.exec(cell);
  return m ? m[1]! : cell;
}

/** The rows of the README table that starts with HEADER. */
function readmeRows(text: string): Row[] {
  const lines = text.split(/\r?\n/);
  const start = lines.findIndex((l) => l.trim() === HEADER);
  assert.ok(start >= 0, `README.md has no configuration table starting with "${HEADER}"`);
  const rows: Row[] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.trim().startsWith('|')) break;
    const [env, flag, def, description, ...rest] = cells(line);
    assert.equal(rest.length, 0, `table row has more than 4 cells: ${line}`);
    rows.push({
      env: unquote(env ?? ''),
      flag: unquote(flag ?? ''),
      default: unquote(def ?? ''),
      description: description ?? '',
    });
  }
  return rows;
}

describe('README configuration table', () => {
  const rows = readmeRows(readFileSync(README, 'utf8'));
  const hint = `\nExpected table (generated from CONFIG_VARIABLES):\n${expectedTable(CONFIG_VARIABLES)}\n`;

  it('lists exactly the variables of CONFIG_VARIABLES, in order', () => {
    assert.deepEqual(
      rows.map((r) => r.env),
      CONFIG_VARIABLES.map((v) => v.env),
      hint,
    );
  });

  it('gives each variable its flag and default', () => {
    assert.deepEqual(
      rows.map((r) => [r.env, r.flag, r.default]),
      CONFIG_VARIABLES.map((v) => [v.env, v.flag, v.default]),
      hint,
    );
  });

  it('gives each variable its description', () => {
    assert.deepEqual(
      rows.map((r) => [r.env, r.description]),
      CONFIG_VARIABLES.map((v) => [v.env, v.description]),
      hint,
    );
  });

  it('parses the table it generates (self-check of the parser)', () => {
    const parsed = readmeRows(expectedTable(CONFIG_VARIABLES));
    assert.deepEqual(
      parsed,
      CONFIG_VARIABLES.map((v) => ({ env: v.env, flag: v.flag, default: v.default, description: v.description })),
    );
  });
});
