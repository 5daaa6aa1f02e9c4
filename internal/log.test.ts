import { createLogger, formatRecord, silentLogger } from './log';

describe('log', () => {
  it('formats text lines as before: time, LEVEL, [component], message, other fields as JSON', () => {
    expect(formatRecord('text', 'T', 'warn', 'pull failed', { component: 'image', ref: 'busybox' })).toBe(
      'T WARN [image] pull failed {"ref":"busybox"}',
    );
    expect(formatRecord('text', 'T', 'info', 'up', {})).toBe('T INFO up');
  });

  it('formats json records with level, message, fields and timestamp', () => {
    const rec = JSON.parse(formatRecord('json', 'T', 'error', 'boom', { component: 'cri', n: 1n })) as Record<
      string,
      unknown
    >;
    expect(rec).toEqual({ level: 'error', message: 'boom', component: 'cri', n: '1', timestamp: 'T' });
  });

  it('filters by level, and children add their fields to every line', () => {
    const lines: string[] = [];
    const log = createLogger('info', 'json', (l) => lines.push(l));
    const child = log.child({ component: 'cni' }).child({ pod: 'p1' });
    child.debug('hidden');
    child.info('shown', { ip: '10.0.0.2' });
    log.log('warn', 'plain');
    expect(lines.every((l) => l.endsWith('\n'))).toBe(true);
    const recs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(recs.map((r) => r.message)).toEqual(['shown', 'plain']);
    expect(recs[0]).toMatchObject({ level: 'info', component: 'cni', pod: 'p1', ip: '10.0.0.2' });
    expect(recs[1].component).toBeUndefined();
    expect(log.isLevelEnabled('debug')).toBe(false);
  });

  it('the silent logger writes nothing', () => {
    const log = silentLogger();
    expect(log.isLevelEnabled('error')).toBe(false);
    expect(() => log.child({ a: 1 }).error('x')).not.toThrow();
  });
});
