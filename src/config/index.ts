/**
 * The one configuration loader: defaults → environment → command-line flags (flags win) → zod schema →
 * one validated, frozen `Config`. A bad value throws a ConfigError whose message is a single line naming
 * the variable and the value; `--help`/`--version` throw HelpRequested (not an error: print and exit 0).
 */
import { parseFlags } from './args.js';
import { ConfigError } from './errors.js';
import { showableKeyValue } from './keys.js';
import { CONFIG_VARIABLES, ConfigSchema, SECRET_VARIABLES } from './schema.js';
import type { Config, VariableName } from './schema.js';

export { ConfigError, HelpRequested } from './errors.js';
export { helpText } from './help.js';
export { CONFIG_VARIABLES } from './schema.js';
export type {
  BackendConfig,
  BackendType,
  Config,
  ConfigVariable,
  LogFormat,
  LogLevel,
  SavePolicy,
  VariableName,
} from './schema.js';

/**
 * Build the configuration from `argv` (without node and script: `process.argv.slice(2)`) and `env`.
 * Unset variables take their defaults; an empty environment value counts as set (and so fails for a number),
 * except for the optional BACKENDS, CACHE_DIR, API_KEYS, BACKEND_API_KEY and ADMIN_TOKEN where empty means unset.
 * An inline key is never shown in an error message. Other environment variables are ignored.
 * @throws ConfigError for an invalid value, an unknown flag or a flag without value
 * @throws HelpRequested for `--help`, `-h` or `--version`
 */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Config {
  const flags = parseFlags(argv);
  const raw: Partial<Record<VariableName, string>> = {};
  for (const v of CONFIG_VARIABLES) {
    const value = flags.get(v.env)?.value ?? env[v.env] ?? v.default;
    if (value !== '' || v.default !== '') raw[v.env] = value;
  }
  const result = ConfigSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const name = String(issue.path[0]) as VariableName;
    const value = SECRET_VARIABLES.has(name) && !showableKeyValue(raw[name]) ? undefined : raw[name];
    throw new ConfigError(name, value, issue.message, { origin: flags.get(name)?.flag });
  }
  // Whether N_SLOTS was given at all is not a value the schema sees; an explicit count is never replaced by the
  // server's total_slots.
  const nSlotsSet = flags.get('N_SLOTS') !== undefined || (env.N_SLOTS ?? '') !== '';
  const backends = Object.freeze(
    result.data.backends.map((b) => Object.freeze({ ...b, nSlotsConfigured: b.nSlotsConfigured || nSlotsSet })),
  );
  return Object.freeze({ ...result.data, backends });
}
