/** Errors of the config loader; both are meant for `main` to print and exit on, never for an HTTP reply. */

const MAX_SHOWN = 200;

/** A configuration value that cannot be used. `message` is one line naming the variable and the bad value. */
export class ConfigError extends Error {
  /** The env name (`LCP_TH`), or the offending argument for a flag that does not exist. */
  readonly variable: string;
  /** The raw value as given, or undefined when there is none (a flag without a value, an unknown flag). */
  readonly value: string | undefined;
  /** What was expected, without the name or the value: `expected a number between 0 and 1`. */
  readonly reason: string;

  /**
   * The message is `invalid NAME="value" (from --flag): reason`, unless `opts.message` replaces it;
   * `opts.origin` names the flag when the value came from the command line.
   */
  constructor(
    variable: string,
    value: string | undefined,
    reason: string,
    opts: { origin?: string; message?: string } = {},
  ) {
    const shown = value === undefined ? '' : `=${quote(value)}`;
    const origin = opts.origin ? ` (from ${opts.origin})` : '';
    super(opts.message ?? `invalid ${variable}${shown}${origin}: ${reason}`);
    this.name = 'ConfigError';
    this.variable = variable;
    this.value = value;
    this.reason = reason;
  }
}

/** Thrown by `loadConfig` for `--help`/`-h` (kind 'help') or `--version` (kind 'version'); not a failure. */
export class HelpRequested extends Error {
  readonly kind: 'help' | 'version';

  constructor(kind: 'help' | 'version') {
    super(kind === 'help' ? 'help requested' : 'version requested');
    this.name = 'HelpRequested';
    this.kind = kind;
  }
}

/** JSON quoting keeps the message on one line whatever the value holds; long values are cut. */
function quote(value: string): string {
  const cut = value.length > MAX_SHOWN ? `${value.slice(0, MAX_SHOWN)}…` : value;
  return JSON.stringify(cut);
}
