/** The `--help` text, generated from CONFIG_VARIABLES so that it cannot drift from the loader. */
import { CONFIG_VARIABLES } from './schema.js';

/** Usage text listing every flag with its environment variable, default and description; ends with a newline. */
export function helpText(): string {
  const lines = [
    'Usage: proxycache [--name=value | --name value]...',
    '',
    'KV-cache gateway for llama.cpp. Every option can also be set by its environment variable;',
    'flags win over the environment. An empty BACKENDS or CACHE_DIR means unset.',
    '',
    'Options:',
  ];
  const width = Math.max(...CONFIG_VARIABLES.map((v) => v.flag.length)) + ' <value>'.length;
  for (const v of CONFIG_VARIABLES) {
    const shown = v.default === '' ? '(unset)' : v.default;
    lines.push(`  ${`${v.flag} <value>`.padEnd(width)}  ${v.env}, default: ${shown}`, `      ${v.description}`);
  }
  lines.push(`  ${'-h, --help'.padEnd(width)}  show this help and exit`);
  lines.push(`  ${'--version'.padEnd(width)}  print the version and exit`, '');
  return lines.join('\n');
}
