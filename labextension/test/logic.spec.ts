import * as fs from 'fs';
import * as path from 'path';

import {
  IServiceSummary,
  actionsEnabled,
  applyEvent,
  changedNames,
  errorMessage,
  parseEventStream,
  revisionLine,
  stateBadge,
  versionMismatch
} from '../src/logic';
import { API_VERSION, FRONTEND_VERSION } from '../src/version';

function service(name: string, state = 'Healthy', extra: Partial<IServiceSummary> = {}): IServiceSummary {
  return {
    name,
    target: 'process',
    revision: 1,
    state,
    reason: '',
    scoringUri: 'http://127.0.0.1:1/score',
    models: ['m:1'],
    description: null,
    tags: {},
    authEnabled: false,
    createdTime: '2026-01-01T00:00:00.000+00:00',
    updatedTime: '2026-01-01T00:00:00.000+00:00',
    inFlight: null,
    failedUpdate: null,
    observed: true,
    ...extra
  };
}

describe('stateBadge', () => {
  it.each([
    ['Healthy', 'ok'],
    ['Transitioning', 'busy'],
    ['Deleting', 'busy'],
    ['Unhealthy', 'bad'],
    ['Failed', 'bad'],
    ['Unschedulable', 'bad'],
    ['Unknown', 'unknown'],
    ['Surprising', 'unknown']
  ])('%s is %s', (state, kind) => {
    const badge = stateBadge(state);
    expect(badge.kind).toBe(kind);
    expect(badge.label).toBe(state);
    expect(badge.css).toContain(`nbdeploy-badge-${kind}`);
  });

  it('shows a missing state as Unknown', () => {
    expect(stateBadge(null)).toEqual({ kind: 'unknown', label: 'Unknown', css: 'nbdeploy-badge nbdeploy-badge-unknown' });
  });

  it('disables actions on Failed and Deleting services only', () => {
    expect(actionsEnabled(service('a', 'Healthy'))).toBe(true);
    expect(actionsEnabled(service('a', 'Unhealthy'))).toBe(true);
    expect(actionsEnabled(service('a', 'Failed'))).toBe(false);
    expect(actionsEnabled(service('a', 'Deleting'))).toBe(false);
  });
});

describe('applyEvent', () => {
  const start = [service('b'), service('a')];

  it('a snapshot replaces everything, sorted by name', () => {
    const next = applyEvent([service('z')], { type: 'snapshot', services: start });
    expect(next.map(s => s.name)).toEqual(['a', 'b']);
  });

  it('a changed service replaces the old one without mutating the input', () => {
    const before = applyEvent([], { type: 'snapshot', services: start });
    const copy = JSON.stringify(before);
    const next = applyEvent(before, { type: 'service', service: service('a', 'Transitioning') });
    expect(next.find(s => s.name === 'a')!.state).toBe('Transitioning');
    expect(next).toHaveLength(2);
    expect(JSON.stringify(before)).toBe(copy);
  });

  it('an unchanged service returns the same array (no redraw)', () => {
    const before = applyEvent([], { type: 'snapshot', services: start });
    expect(applyEvent(before, { type: 'service', service: service('a') })).toBe(before);
  });

  it('a new service is added in name order', () => {
    const next = applyEvent([service('a'), service('c')], { type: 'service', service: service('b') });
    expect(next.map(s => s.name)).toEqual(['a', 'b', 'c']);
  });

  it('removed drops the service; removing an unknown one changes nothing', () => {
    const before = [service('a'), service('b')];
    expect(applyEvent(before, { type: 'removed', name: 'a' }).map(s => s.name)).toEqual(['b']);
    expect(applyEvent(before, { type: 'removed', name: 'x' })).toBe(before);
  });

  it('a models event leaves the services alone', () => {
    const before = [service('a')];
    expect(applyEvent(before, { type: 'models' })).toBe(before);
  });

  it('changedNames lists added, changed and removed names only', () => {
    const before = [service('a'), service('b'), service('c')];
    const after = [service('a'), service('b', 'Failed'), service('d')];
    expect(changedNames(before, after)).toEqual(['b', 'c', 'd']);
    expect(changedNames(before, before)).toEqual([]);
  });
});

describe('revisionLine', () => {
  it('shows what serves and what is in flight with its elapsed time', () => {
    const s = service('a', 'Healthy', {
      revision: 3,
      inFlight: { revision: 4, outcome: 'starting', state: null, reason: null, createdTime: '2026-01-01T00:00:00.000Z', finishedTime: null, models: null }
    });
    expect(revisionLine(s, Date.parse('2026-01-01T00:00:12.000Z'))).toBe('revision 3 Healthy · revision 4 starting (12 s)');
  });

  it('keeps a refused update visible while the service stays Healthy', () => {
    const s = service('a', 'Healthy', {
      revision: 2,
      failedUpdate: { revision: 3, outcome: 'failed', state: 'Failed', reason: 'init() failed', createdTime: 'x', finishedTime: 'y', models: null }
    });
    expect(revisionLine(s)).toBe('revision 2 Healthy · update to revision 3 failed');
  });
});

describe('parseEventStream', () => {
  it('returns complete events and keeps the unfinished rest', () => {
    const text =
      'retry: 1000\n\n: keep-alive\n\ndata: {"type":"removed","name":"a"}\n\ndata: {"type":"mod';
    const { events, rest } = parseEventStream(text);
    expect(events).toEqual([{ type: 'removed', name: 'a' }]);
    expect(rest).toBe('data: {"type":"mod');
    const more = parseEventStream(rest + 'els"}\n\n');
    expect(more.events).toEqual([{ type: 'models' }]);
    expect(more.rest).toBe('');
  });

  it('accepts CRLF line ends and multi-line data', () => {
    const { events } = parseEventStream('data: {"type":\r\ndata: "models"}\r\n\r\n');
    expect(events).toEqual([{ type: 'models' }]);
  });
});

describe('version handshake', () => {
  const me = { version: FRONTEND_VERSION, api: API_VERSION };

  it('is quiet when both sides agree', () => {
    expect(versionMismatch(me, { version: FRONTEND_VERSION, api: API_VERSION })).toBeNull();
  });

  it('names both versions and the fix on a mismatch', () => {
    const msg = versionMismatch(me, { version: '9.9.9', api: API_VERSION })!;
    expect(msg).toContain('9.9.9');
    expect(msg).toContain(FRONTEND_VERSION);
    expect(msg).toContain("pip install -U 'nbdeploy[lab]'");
    expect(versionMismatch(me, { version: FRONTEND_VERSION, api: API_VERSION + 1 })).toContain('API');
  });

  it('says the server extension is missing when it does not answer', () => {
    expect(versionMismatch(me, null)).toContain('server extension does not answer');
  });

  it('FRONTEND_VERSION is the version in package.json and pyproject.toml', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));
    expect(FRONTEND_VERSION).toBe(pkg.version);
    const pyproject = fs.readFileSync(path.join(__dirname, '..', '..', 'pyproject.toml'), 'utf8');
    expect(pyproject).toMatch(new RegExp(`^version = "${FRONTEND_VERSION.replace(/\./g, '\\.')}"`, 'm'));
    const init = fs.readFileSync(path.join(__dirname, '..', '..', 'nbdeploy', '__init__.py'), 'utf8');
    expect(init).toContain(`__version__ = "${FRONTEND_VERSION}"`);
  });
});

describe('errorMessage', () => {
  it('prefers the server message', () => {
    expect(errorMessage(404, { message: "No service named 'x'." })).toBe("No service named 'x'.");
    expect(errorMessage(500, 'oops')).toBe('the server answered 500');
  });
});
