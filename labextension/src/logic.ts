/**
 * The panel's pure logic: types of the REST documents, the state badge, applying pushed events,
 * parsing the event stream and the version handshake. No DOM and no JupyterLab here (jest tests it).
 */

export interface IRevisionBrief {
  revision: number;
  outcome: string;
  state: string | null;
  reason: string | null;
  createdTime: string;
  finishedTime: string | null;
  models: string[] | null;
}

export interface IServiceSummary {
  name: string;
  target: string;
  revision: number;
  state: string;
  reason: string;
  scoringUri: string | null;
  models: string[];
  description: string | null;
  tags: Record<string, string>;
  authEnabled: boolean;
  createdTime: string;
  updatedTime: string;
  inFlight: IRevisionBrief | null;
  failedUpdate: IRevisionBrief | null;
  observed: boolean;
}

export interface IServiceDetail extends IServiceSummary {
  revisions: IRevisionBrief[];
  serialized: Record<string, unknown>;
}

export interface IModelVersion {
  id: string;
  name: string;
  version: number;
  tags: Record<string, string>;
  description: string | null;
  size: number;
  sizeText: string;
  framework: string | null;
  createdTime: string;
  createdBy: string | null;
  usedBy: string[];
}

export interface IModel {
  name: string;
  latest: number;
  versions: IModelVersion[];
}

export type WatchEvent =
  | { type: 'snapshot'; services: IServiceSummary[] }
  | { type: 'service'; service: IServiceSummary }
  | { type: 'removed'; name: string }
  | { type: 'models' };

export type BadgeKind = 'ok' | 'busy' | 'bad' | 'unknown';

export interface IBadge {
  kind: BadgeKind;
  label: string;
  css: string;
}

/** The badge for a service state (v1's spelling); anything unexpected is shown as it is, grey. */
export function stateBadge(state: string | null | undefined): IBadge {
  const label = state || 'Unknown';
  let kind: BadgeKind;
  switch (label) {
    case 'Healthy':
      kind = 'ok';
      break;
    case 'Transitioning':
    case 'Deleting':
      kind = 'busy';
      break;
    case 'Unhealthy':
    case 'Failed':
    case 'Unschedulable':
      kind = 'bad';
      break;
    default:
      kind = 'unknown';
  }
  return { kind, label, css: `nbdeploy-badge nbdeploy-badge-${kind}` };
}

/** Whether the panel may offer score/update/roll back on a service in this state. */
export function actionsEnabled(service: IServiceSummary): boolean {
  return service.state !== 'Deleting' && service.state !== 'Failed';
}

/**
 * The services after an event, sorted by name. The input is never mutated; an event that changes
 * nothing returns the same array (so the view can skip a redraw).
 */
export function applyEvent(
  services: IServiceSummary[],
  event: WatchEvent
): IServiceSummary[] {
  switch (event.type) {
    case 'snapshot':
      return [...event.services].sort(byName);
    case 'service': {
      const index = services.findIndex(s => s.name === event.service.name);
      if (index >= 0 && sameService(services[index], event.service)) {
        return services;
      }
      const next = services.filter(s => s.name !== event.service.name);
      next.push(event.service);
      return next.sort(byName);
    }
    case 'removed': {
      if (!services.some(s => s.name === event.name)) {
        return services;
      }
      return services.filter(s => s.name !== event.name);
    }
    default:
      return services;
  }
}

/** Names whose summary differs between two lists (added, changed or removed): what the view redraws. */
export function changedNames(
  before: IServiceSummary[],
  after: IServiceSummary[]
): string[] {
  const old = new Map(before.map(s => [s.name, s]));
  const names = new Set<string>();
  for (const s of after) {
    const o = old.get(s.name);
    if (!o || !sameService(o, s)) {
      names.add(s.name);
    }
    old.delete(s.name);
  }
  old.forEach((_, name) => names.add(name));
  return [...names].sort();
}

function byName(a: IServiceSummary, b: IServiceSummary): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function sameService(a: IServiceSummary, b: IServiceSummary): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** One line on what serves and what is in flight: "revision 3 Healthy · revision 4 starting (12 s)". */
export function revisionLine(service: IServiceSummary, now: number = Date.now()): string {
  let line = `revision ${service.revision} ${service.state}`;
  if (service.inFlight) {
    const started = Date.parse(service.inFlight.createdTime);
    const elapsed = Number.isNaN(started) ? '' : ` (${Math.max(0, Math.round((now - started) / 1000))} s)`;
    line += ` · revision ${service.inFlight.revision} starting${elapsed}`;
  } else if (service.failedUpdate) {
    line += ` · update to revision ${service.failedUpdate.revision} failed`;
  }
  return line;
}

/**
 * Split an event-stream buffer into complete events and the unfinished rest.
 * Only `data:` lines matter; comments (keep-alives) and `retry:` are skipped.
 */
export function parseEventStream(buffer: string): { events: WatchEvent[]; rest: string } {
  const events: WatchEvent[] = [];
  const normalized = buffer.replace(/\r\n/g, '\n');
  const blocks = normalized.split('\n\n');
  const rest = blocks.pop() ?? '';
  for (const block of blocks) {
    const data = block
      .split('\n')
      .filter(line => line.startsWith('data:'))
      .map(line => line.slice(5).replace(/^ /, ''))
      .join('\n');
    if (data) {
      events.push(JSON.parse(data) as WatchEvent);
    }
  }
  return { events, rest };
}

/** The handshake: null when the panel and the server agree, else the message to show. */
export function versionMismatch(
  frontend: { version: string; api: number },
  server: { version?: string; api?: number } | null
): string | null {
  if (!server || !server.version) {
    return (
      'The nbdeploy server extension does not answer. Install it into the Python environment that runs ' +
      "JupyterLab (pip install 'nbdeploy[lab]') and restart jupyter lab; check with `jupyter server extension list`."
    );
  }
  if (server.api !== frontend.api || server.version !== frontend.version) {
    return (
      `Version mismatch: this panel is nbdeploy ${frontend.version} (API ${frontend.api}) but the server runs ` +
      `nbdeploy ${server.version} (API ${server.api}). Reinstall one version of nbdeploy in the environment ` +
      "that runs JupyterLab (pip install -U 'nbdeploy[lab]'), restart jupyter lab and reload this page."
    );
  }
  return null;
}

/** The message of an error answer from the REST API (`{"message": ...}`), else the HTTP status. */
export function errorMessage(status: number, body: unknown): string {
  if (body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') {
    return (body as { message: string }).message;
  }
  return `the server answered ${status}`;
}
