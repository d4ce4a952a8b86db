/**
 * Command-line flags: `--name=value` or `--name value`, one flag per configuration variable, the last one wins.
 * `--help`/`-h` and `--version` anywhere win over everything else.
 */
import { ConfigError, HelpRequested } from './errors.js';
import { CONFIG_VARIABLES } from './schema.js';
import type { VariableName } from './schema.js';

const ENV_BY_FLAG = new Map(CONFIG_VARIABLES.map((v) => [v.flag, v.env]));

/** Values set on the command line, keyed by env name, with the flag spelling kept for error messages. */
export type FlagValues = Map<VariableName, { value: string; flag: string }>;

/** Parse `argv` (without node and script, i.e. `process.argv.slice(2)`). Throws ConfigError or HelpRequested. */
export function parseFlags(argv: readonly string[]): FlagValues {
  if (argv.some((a) => a === '--help' || a === '-h')) throw new HelpRequested('help');
  if (argv.includes('--version')) throw new HelpRequested('version');
  const values: FlagValues = new Map();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      throw new ConfigError(arg, undefined, 'unexpected argument', {
        message: `unexpected argument ${JSON.stringify(arg)}: options look like --name=value (see --help)`,
      });
    }
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const env = ENV_BY_FLAG.get(flag);
    if (env === undefined) {
      throw new ConfigError(flag, undefined, 'unknown flag', { message: `unknown flag ${flag} (see --help)` });
    }
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) value = argv[++i];
    if (value === undefined) {
      throw new ConfigError(env, undefined, 'missing value', {
        message: `missing value for ${flag} (${env}): use ${flag}=VALUE or ${flag} VALUE`,
      });
    }
    values.set(env, { value, flag });
  }
  return values;
}
