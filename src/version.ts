/** The proxy's version, as package.json says (read once). */
import { readFileSync } from 'node:fs';

let version: string | undefined;

/** The version in package.json (two levels up from dist/src/version.js). */
export function packageVersion(): string {
  version ??= (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
    .version;
  return version;
}
