import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CONFIG_VARIABLES, ConfigError, HelpRequested, helpText, loadConfig } from '../../src/config/index.js';
import type { BackendConfig, BackendType, Config, LogLevel, SavePolicy } from '../../src/config/index.js';

// Compile-time checks that the inferred Config keeps the precise types callers rely on.
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const typeChecks: [
  Equal<Config['logLevel'], LogLevel>,
  Equal<Config['savePolicy'], SavePolicy>,
  Equal<Config['backendType'], BackendType>,
  Equal<Config['backends'], readonly BackendConfig[]>,
  Equal<Config['cacheDir'], string | null>,
  Equal<Config['port'], number>,
] = [true, true, true, true, true, true];
void typeChecks;

/** The configuration table of the seed README (proxycache-llama-swap-fork), copied verbatim. */
const SEED_DEFAULTS: Record<string, string> = {
  LLAMA_URL: 'http://127.0.0.1:8000',
  N_SLOTS: '2',
  PORT: '8081',
  META_DIR: './kv_meta',
  BIG_THRESHOLD_WORDS: '500',
  WORDS_PER_BLOCK: '100',
  LCP_TH: '0.6',
  REQUEST_TIMEOUT: '600',
  CACHE_DIR: '',
  CACHE_MAX_AGE_HOURS: '168',
  CACHE_MAX_SIZE_GB: '50',
  CACHE_CLEANUP_INTERVAL_MINUTES: '60',
};

/** The ConfigError thrown by `fn`; fails the test when nothing (or something else) is thrown. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.ok(!err.message.includes('\n'), `message must be one line: ${err.message}`);
    return err;
  }
  assert.fail('expected a ConfigError');
}

describe('config defaults', () => {
  it('equal the seed README table', () => {
    const c = loadConfig([], {});
    assert.equal(c.llamaUrl, 'http://127.0.0.1:8000');
    assert.equal(c.nSlots, 2);
    assert.equal(c.port, 8081);
    assert.equal(c.metaDir, './kv_meta');
    assert.equal(c.bigThresholdWords, 500);
    assert.equal(c.wordsPerBlock, 100);
    assert.equal(c.lcpTh, 0.6);
    assert.equal(c.requestTimeout, 600);
    assert.equal(c.cacheDir, null);
    assert.equal(c.cacheMaxAgeHours, 168);
    assert.equal(c.cacheMaxSizeGb, 50);
    assert.equal(c.cacheCleanupIntervalMinutes, 60);
  });

  it('documents the seed defaults unchanged in CONFIG_VARIABLES', () => {
    for (const [env, value] of Object.entries(SEED_DEFAULTS)) {
      assert.equal(CONFIG_VARIABLES.find((v) => v.env === env)?.default, value, env);
    }
  });

  it('fill the variables the seed did not have', () => {
    const c = loadConfig([], {});
    assert.deepEqual(c.backends, [
      { url: 'http://127.0.0.1:8000', nSlots: 2, nSlotsConfigured: false, type: 'auto', serverCacheRamMib: 8192 },
    ]);
    assert.equal(c.backendType, 'auto');
    assert.equal(c.host, '0.0.0.0');
    assert.equal(c.modelId, 'llama.cpp');
    assert.equal(c.connectTimeout, 5);
    assert.equal(c.acquireTimeout, 300);
    assert.equal(c.savePolicy, 'smart');
    assert.equal(c.saveMinNewTokens, 0);
    assert.equal(c.logLevel, 'info');
  });

  it('load the seed README quick-start example', () => {
    const c = loadConfig([], {
      LLAMA_URL: 'http://127.0.0.1:9292',
      N_SLOTS: '1',
      PORT: '5000',
      META_DIR: '/path/to/proxycache-meta',
      CACHE_DIR: '/path/to/kv-cache',
      BIG_THRESHOLD_WORDS: '1500',
    });
    assert.deepEqual(c.backends, [
      { url: 'http://127.0.0.1:9292', nSlots: 1, nSlotsConfigured: true, type: 'auto', serverCacheRamMib: 8192 },
    ]);
    assert.equal(c.port, 5000);
    assert.equal(c.metaDir, '/path/to/proxycache-meta');
    assert.equal(c.cacheDir, '/path/to/kv-cache');
    assert.equal(c.bigThresholdWords, 1500);
  });

  it('load the seed README systemd example', () => {
    const c = loadConfig([], {
      CACHE_MAX_AGE_HOURS: '0',
      CACHE_MAX_SIZE_GB: '100',
      LLAMA_URL: 'http://127.0.0.1:9292',
    });
    assert.equal(c.cacheMaxAgeHours, 0);
    assert.equal(c.cacheMaxSizeGb, 100);
  });
});

describe('config sources', () => {
  it('takes values from the environment and ignores unrelated variables', () => {
    const c = loadConfig([], { LCP_TH: '0.8', LOG_LEVEL: 'DEBUG', SAVE_POLICY: 'smart', PATH: '/bin', PORT: '0' });
    assert.equal(c.lcpTh, 0.8);
    assert.equal(c.logLevel, 'debug');
    assert.equal(c.savePolicy, 'smart');
    assert.equal(c.port, 0);
  });

  it('lets flags win over the environment, in both flag forms, last flag winning', () => {
    const env = { PORT: '5000', LLAMA_URL: 'http://a:1', BIG_THRESHOLD_WORDS: '10' };
    const c = loadConfig(
      ['--port=6000', '--llama-url', 'http://b:2/', '--big-threshold-words', '1', '--big-threshold-words=2'],
      env,
    );
    assert.equal(c.port, 6000);
    assert.equal(c.llamaUrl, 'http://b:2');
    assert.equal(c.bigThresholdWords, 2);
  });

  it('treats empty optional variables as unset', () => {
    const c = loadConfig(['--cache-dir='], { BACKENDS: '', CACHE_DIR: '/x' });
    assert.equal(c.cacheDir, null);
    assert.equal(c.backends.length, 1);
  });

  it('accepts the seed spellings of log levels', () => {
    assert.equal(loadConfig([], { LOG_LEVEL: 'INFO' }).logLevel, 'info');
    assert.equal(loadConfig([], { LOG_LEVEL: 'WARNING' }).logLevel, 'warn');
    assert.equal(loadConfig([], { LOG_LEVEL: 'critical' }).logLevel, 'fatal');
  });

  it('accepts boundary values', () => {
    const c = loadConfig([], {
      LCP_TH: '1',
      N_SLOTS: ' 3 ',
      BIG_THRESHOLD_WORDS: '0',
      PORT: '65535',
      REQUEST_TIMEOUT: '0.5',
    });
    assert.deepEqual([c.lcpTh, c.nSlots, c.bigThresholdWords, c.port, c.requestTimeout], [1, 3, 0, 65535, 0.5]);
    assert.equal(loadConfig([], { LCP_TH: '0' }).lcpTh, 0);
    assert.equal(loadConfig([], { LCP_TH: '5e-1' }).lcpTh, 0.5);
  });
});

describe('BACKENDS', () => {
  it('replaces LLAMA_URL and N_SLOTS, filling n_slots and type from N_SLOTS and BACKEND_TYPE', () => {
    const backends = JSON.stringify([
      { url: 'http://gpu0:8080/', n_slots: 4 },
      { url: 'https://GPU1:8443', type: 'llama-swap' },
      { url: 'http://gpu2:80/base//' },
    ]);
    const c = loadConfig([], {
      BACKENDS: backends,
      N_SLOTS: '3',
      BACKEND_TYPE: 'router',
      LLAMA_URL: 'http://ignored:1',
    });
    assert.deepEqual(c.backends, [
      { url: 'http://gpu0:8080', nSlots: 4, nSlotsConfigured: true, type: 'router', serverCacheRamMib: 8192 },
      { url: 'https://gpu1:8443', nSlots: 3, nSlotsConfigured: true, type: 'llama-swap', serverCacheRamMib: 8192 },
      { url: 'http://gpu2/base', nSlots: 3, nSlotsConfigured: true, type: 'router', serverCacheRamMib: 8192 },
    ]);
  });

  it("takes each server's --cache-ram from its entry's cache_ram_mib, else from SERVER_CACHE_RAM_MIB", () => {
    const backends = JSON.stringify([
      { url: 'http://big:1', cache_ram_mib: 32768 },
      { url: 'http://off:1', cache_ram_mib: 0 },
      { url: 'http://unbounded:1', cache_ram_mib: -1 },
      { url: 'http://declared:1' },
    ]);
    const c = loadConfig([], { BACKENDS: backends, SERVER_CACHE_RAM_MIB: '4096' });
    assert.deepEqual(
      c.backends.map((b) => b.serverCacheRamMib),
      [32768, 0, -1, 4096],
    );
    assert.equal(loadConfig([], {}).backends[0]!.serverCacheRamMib, 8192, "LLAMA_URL's server: llama-server's default");
  });

  it("an entry without n_slots and no N_SLOTS takes the server's total_slots (nSlotsConfigured false)", () => {
    const c = loadConfig([], { BACKENDS: JSON.stringify([{ url: 'http://a:1', n_slots: 2 }, { url: 'http://b:1' }]) });
    assert.deepEqual(
      c.backends.map((b) => [b.nSlots, b.nSlotsConfigured]),
      [
        [2, true],
        [2, false],
      ],
    );
  });

  it('can be given as a flag', () => {
    const c = loadConfig(['--backends', '[{"url":"http://x:1","n_slots":1}]'], {});
    assert.deepEqual(c.backends, [
      { url: 'http://x:1', nSlots: 1, nSlotsConfigured: true, type: 'auto', serverCacheRamMib: 8192 },
    ]);
  });

  const cases: Array<[string, string]> = [
    ['not json', 'expected a JSON list'],
    ['{"url":"http://a:1"}', 'expected a non-empty JSON list'],
    ['[]', 'expected a non-empty JSON list'],
    ['["http://a:1"]', 'entry 0: expected an object'],
    ['[{"n_slots":1}]', 'entry 0: url: expected a string'],
    ['[{"url":"http://a:1"},{"url":"ftp://b"}]', 'entry 1: url: expected an http(s) URL'],
    ['[{"url":"http://a:1","n_slots":0}]', 'entry 0: n_slots: expected an integer >= 1'],
    ['[{"url":"http://a:1","n_slots":1.5}]', 'entry 0: n_slots: expected an integer >= 1'],
    ['[{"url":"http://a:1","nslots":2}]', 'entry 0: unknown key "nslots" (allowed: url, n_slots, type, cache_ram_mib)'],
    ['[{"url":"http://a:1","cache_ram_mib":-2}]', 'entry 0: cache_ram_mib: expected an integer >= -1'],
    ['[{"url":"http://a:1","cache_ram_mib":"8192"}]', 'entry 0: cache_ram_mib: expected an integer >= -1'],
    ['[{"url":"http://a:1","cache_ram_mib":1.5}]', 'entry 0: cache_ram_mib: expected an integer >= -1'],
    ['[{"url":"http://a:1","type":"ollama"}]', 'entry 0: type: expected one of auto, llama-server, llama-swap, router'],
    ['[{"url":"http://a:1"},{"url":"http://a:1/"}]', 'entry 1: duplicate url http://a:1'],
  ];
  for (const [value, reason] of cases) {
    it(`rejects ${value}`, () => {
      const err = configError(() => loadConfig([], { BACKENDS: value }));
      assert.equal(err.variable, 'BACKENDS');
      assert.ok(err.message.startsWith(`invalid BACKENDS=${JSON.stringify(value)}: ${reason}`), err.message);
    });
  }
});

describe('invalid values', () => {
  it('name the variable and the value in one line', () => {
    const err = configError(() => loadConfig([], { LCP_TH: 'abc' }));
    assert.equal(err.message, 'invalid LCP_TH="abc": expected a number between 0 and 1');
    assert.deepEqual([err.variable, err.value, err.reason], ['LCP_TH', 'abc', 'expected a number between 0 and 1']);
  });

  it('name the flag too when the value came from the command line', () => {
    const err = configError(() => loadConfig(['--n-slots=0'], { N_SLOTS: '4' }));
    assert.equal(err.message, 'invalid N_SLOTS="0" (from --n-slots): expected an integer >= 1');
  });

  const cases: Array<[string, string, string]> = [
    ['N_SLOTS', '0', 'expected an integer >= 1'],
    ['N_SLOTS', '1.5', 'expected an integer >= 1'],
    ['N_SLOTS', '1e3', 'expected an integer >= 1'],
    ['N_SLOTS', '12abc', 'expected an integer >= 1'],
    ['N_SLOTS', '', 'expected an integer >= 1'],
    ['PORT', '65536', 'expected an integer between 0 and 65535'],
    ['PORT', '-1', 'expected an integer between 0 and 65535'],
    ['PORT', 'http', 'expected an integer between 0 and 65535'],
    ['BIG_THRESHOLD_WORDS', '-1', 'expected an integer >= 0'],
    ['WORDS_PER_BLOCK', '0', 'expected an integer >= 1'],
    ['LCP_TH', '1.1', 'expected a number between 0 and 1'],
    ['LCP_TH', 'NaN', 'expected a number between 0 and 1'],
    ['LCP_TH', '', 'expected a number between 0 and 1'],
    ['REQUEST_TIMEOUT', '0', 'expected a number > 0'],
    ['CONNECT_TIMEOUT', '-5', 'expected a number > 0'],
    ['ACQUIRE_TIMEOUT', 'Infinity', 'expected a number > 0'],
    ['CACHE_MAX_AGE_HOURS', '-1', 'expected a number >= 0'],
    ['CACHE_MAX_SIZE_GB', '10GB', 'expected a number >= 0'],
    ['CACHE_CLEANUP_INTERVAL_MINUTES', '0', 'expected a number > 0'],
    ['SAVE_MIN_NEW_TOKENS', '-3', 'expected an integer >= 0'],
    ['SAVE_POLICY', 'never', 'expected one of always, smart'],
    ['LOG_LEVEL', 'verbose', 'expected one of trace, debug, info, warn, error, fatal, silent'],
    ['BACKEND_TYPE', 'ollama', 'expected one of auto, llama-server, llama-swap, router'],
    ['LLAMA_URL', 'localhost:8000', 'expected an http(s) URL'],
    ['LLAMA_URL', 'ftp://host', 'expected an http(s) URL'],
    ['LLAMA_URL', 'http://user:pw@host', 'expected an http(s) URL'],
    ['LLAMA_URL', 'http://host/?x=1', 'expected an http(s) URL'],
    ['HOST', '', 'expected a non-empty value'],
    ['META_DIR', '  ', 'expected a non-empty value'],
    ['MODEL_ID', '', 'expected a non-empty value'],
  ];
  for (const [env, value, reason] of cases) {
    it(`reject ${env}=${JSON.stringify(value)}`, () => {
      const err = configError(() => loadConfig([], { [env]: value }));
      assert.equal(err.variable, env);
      assert.ok(err.message.startsWith(`invalid ${env}=${JSON.stringify(value)}: ${reason}`), err.message);
    });
  }
});

describe('command line', () => {
  it('rejects an unknown flag', () => {
    const err = configError(() => loadConfig(['--port=1', '--no-such-thing=1'], {}));
    assert.equal(err.message, 'unknown flag --no-such-thing (see --help)');
  });

  it('rejects a positional argument and a flag without value', () => {
    assert.match(configError(() => loadConfig(['serve'], {})).message, /unexpected argument "serve"/);
    const err = configError(() => loadConfig(['--port'], {}));
    assert.equal(err.variable, 'PORT');
    assert.match(err.message, /missing value for --port/);
    assert.match(configError(() => loadConfig(['--port', '--host=x'], {})).message, /missing value for --port/);
  });

  it('reports --help, -h and --version with HelpRequested, even next to bad flags', () => {
    const kind = (argv: string[]) => {
      try {
        loadConfig(argv, {});
      } catch (err) {
        assert.ok(err instanceof HelpRequested);
        return err.kind;
      }
      return 'nothing thrown';
    };
    assert.equal(kind(['--help']), 'help');
    assert.equal(kind(['--bogus', '-h']), 'help');
    assert.equal(kind(['--version']), 'version');
  });

  it('helpText lists every variable with its flag and default', () => {
    const text = helpText();
    for (const v of CONFIG_VARIABLES) {
      const line = text.split('\n').find((l) => l.includes(`${v.flag} <value>`));
      assert.ok(line, `${v.flag} missing from help`);
      assert.ok(line.includes(v.env) && line.includes(v.default === '' ? '(unset)' : v.default), line);
      assert.ok(text.includes(v.description), v.env);
    }
  });
});

describe('the Config object', () => {
  it('is frozen, backends included', () => {
    const c = loadConfig([], { BACKENDS: '[{"url":"http://a:1"}]' });
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.backends) && Object.isFrozen(c.backends[0]));
    assert.throws(() => {
      (c as { port: number }).port = 1;
    }, TypeError);
    assert.throws(() => (c.backends as unknown[]).push({}), TypeError);
    assert.equal(c.port, 8081);
  });

  it('has one field per variable, named in camelCase, and a kebab-case flag', () => {
    const c = loadConfig([], {});
    const envs: string[] = CONFIG_VARIABLES.map((v) => v.env);
    assert.equal(new Set(envs).size, envs.length);
    for (const v of CONFIG_VARIABLES) {
      assert.ok(v.field in c, `${v.field} missing from Config`);
      assert.equal(v.flag, `--${v.env.toLowerCase().replaceAll('_', '-')}`);
    }
    for (const env of Object.keys(SEED_DEFAULTS)) assert.ok(envs.includes(env), env);
  });
});
