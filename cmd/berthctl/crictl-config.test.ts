import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UsageError } from './common';
import { parseCrictlYaml, parseTimeout, readCrictlFile, resolveConnection } from './crictl-config';

describe('parseTimeout', () => {
  it('takes seconds and Go durations', () => {
    expect(parseTimeout('10')).toBe(10);
    expect(parseTimeout(3)).toBe(3);
    expect(parseTimeout('2s')).toBe(2);
    expect(parseTimeout('500ms')).toBe(0.5);
    expect(parseTimeout('1m30s')).toBe(90);
    expect(parseTimeout('1h')).toBe(3600);
  });
  it('refuses what is not one', () => {
    for (const v of ['', 'soon', '10x', 's', '1s2', null, {}]) expect(parseTimeout(v)).toBeUndefined();
  });
});

describe('parseCrictlYaml', () => {
  it("reads crictl's keys and ignores the others", () => {
    expect(
      parseCrictlYaml(
        'runtime-endpoint: unix:///run/a.sock\nimage-endpoint: unix:///run/b.sock\ntimeout: 10\ndebug: true\npull-image-on-create: false\n',
        'f',
      ),
    ).toEqual({
      runtimeEndpoint: 'unix:///run/a.sock',
      imageEndpoint: 'unix:///run/b.sock',
      timeoutSeconds: 10,
    });
    expect(parseCrictlYaml('', 'f')).toEqual({});
    expect(parseCrictlYaml('timeout: 2s\n', 'f')).toEqual({ timeoutSeconds: 2 });
  });
  it('names the file and key when something is wrong', () => {
    expect(() => parseCrictlYaml('timeout: soon\n', '/etc/crictl.yaml')).toThrow(
      'config file /etc/crictl.yaml: timeout must be seconds',
    );
    expect(() => parseCrictlYaml('runtime-endpoint: [a]\n', 'f')).toThrow(
      'runtime-endpoint must be a string',
    );
    expect(() => parseCrictlYaml('- a\n', 'f')).toThrow('expected a map');
    expect(() => parseCrictlYaml('a: [\n', 'f')).toThrow(UsageError);
  });
});

describe('readCrictlFile', () => {
  it('reads a named file; a missing named file is an error', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'crictl-'));
    try {
      const f = path.join(dir, 'crictl.yaml');
      fs.writeFileSync(f, 'runtime-endpoint: /x.sock\n');
      expect(readCrictlFile(f, {})).toEqual({ runtimeEndpoint: '/x.sock' });
      expect(readCrictlFile(undefined, { CRI_CONFIG_FILE: f })).toEqual({ runtimeEndpoint: '/x.sock' });
      expect(() => readCrictlFile(path.join(dir, 'none.yaml'), {})).toThrow('cannot read config file');
      expect(() => readCrictlFile(undefined, { CRI_CONFIG_FILE: path.join(dir, 'none') })).toThrow('ENOENT');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('resolveConnection', () => {
  const file = {
    runtimeEndpoint: 'unix:///file.sock',
    imageEndpoint: 'unix:///file-img.sock',
    timeoutSeconds: 7,
  };
  it('flag > env > file > default, each setting on its own', () => {
    expect(resolveConnection({}, {}, {})).toEqual({
      runtimeEndpoint: 'unix:///run/berth/berth.sock',
      imageEndpoint: 'unix:///run/berth/berth.sock',
      timeoutSeconds: 2,
    });
    expect(resolveConnection({}, {}, file)).toEqual({
      runtimeEndpoint: 'unix:///file.sock',
      imageEndpoint: 'unix:///file-img.sock',
      timeoutSeconds: 7,
    });
    const env = {
      CONTAINER_RUNTIME_ENDPOINT: 'unix:///env.sock',
      IMAGE_SERVICE_ENDPOINT: 'unix:///env-img.sock',
    };
    expect(resolveConnection({}, env, file)).toEqual({
      runtimeEndpoint: 'unix:///env.sock',
      imageEndpoint: 'unix:///env-img.sock',
      timeoutSeconds: 7,
    });
    expect(
      resolveConnection(
        { runtimeEndpoint: '/flag.sock', imageEndpoint: '/flag-img.sock', timeout: '3s' },
        env,
        file,
      ),
    ).toEqual({ runtimeEndpoint: '/flag.sock', imageEndpoint: '/flag-img.sock', timeoutSeconds: 3 });
  });
  it("puts the image service on the runtime's endpoint when none is set, and reads BERTH_ENDPOINT below crictl's variable", () => {
    expect(resolveConnection({ runtimeEndpoint: '/a.sock' }, {}, {}).imageEndpoint).toBe('/a.sock');
    expect(resolveConnection({}, { BERTH_ENDPOINT: '/b.sock' }, file).runtimeEndpoint).toBe('/b.sock');
    expect(
      resolveConnection({}, { BERTH_ENDPOINT: '/b.sock', CONTAINER_RUNTIME_ENDPOINT: '/c.sock' }, {})
        .runtimeEndpoint,
    ).toBe('/c.sock');
  });
  it('takes 0 or less as the default timeout, and refuses a bad one', () => {
    expect(resolveConnection({ timeout: '0' }, {}, {}).timeoutSeconds).toBe(2);
    expect(() => resolveConnection({ timeout: 'soon' }, {}, {})).toThrow('--timeout wants seconds');
  });
});
