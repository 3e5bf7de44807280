/** The side panel: services (live), the model registry, a service view and a deploy form. Plain DOM. */

import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { ApiError, EventStream, postJSON, requestAPI } from './api';
import {
  IModel,
  IModelVersion,
  IServiceDetail,
  IServiceSummary,
  WatchEvent,
  actionsEnabled,
  applyEvent,
  revisionLine,
  stateBadge,
  versionMismatch
} from './logic';
import { API_VERSION, FRONTEND_VERSION } from './version';

type Attrs = Record<string, string | number | boolean | undefined>;

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Node | string | null | undefined)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) {
      continue;
    }
    if (key === 'class') {
      el.className = String(value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      el.append(child);
    }
  }
  return el;
}

function badge(state: string): HTMLElement {
  const b = stateBadge(state);
  return h('span', { class: `${b.css} nbdeploy-state`, 'data-state': b.label }, b.label);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const LOG_FOLLOW_MS = 2000;

export class NbdeployPanel extends Widget {
  private services: IServiceSummary[] = [];
  private models: IModel[] = [];
  private targets: string[] = ['process'];
  private environments: string[] = [];
  private stream: EventStream;
  private selected: string | null = null;
  private logTimer: number | null = null;
  private elapsedTimer: number | null = null;
  private modelsStale = false;

  private readonly banner = h('div', { class: 'nbdeploy-banner', hidden: true });
  private readonly live = h('span', { class: 'nbdeploy-live', title: 'event stream' }, 'connecting');
  private readonly workspaceLine = h('div', { class: 'nbdeploy-workspace' });
  private readonly listView = h('div', { class: 'nbdeploy-list-view' });
  private readonly servicesBox = h('div', { class: 'nbdeploy-services' });
  private readonly modelsBox = h('div', { class: 'nbdeploy-models' });
  private readonly serviceView = h('div', { class: 'nbdeploy-service-view', hidden: true });

  constructor() {
    super();
    this.id = 'nbdeploy-panel';
    this.addClass('nbdeploy-panel');
    this.title.caption = 'nbdeploy: models and services';
    const refresh = h('button', { class: 'nbdeploy-button', title: 'Reload models and services' }, 'Refresh');
    refresh.onclick = () => void this.refreshAll();
    this.node.append(
      h('div', { class: 'nbdeploy-header' }, h('h2', {}, 'nbdeploy'), this.live, refresh),
      this.workspaceLine,
      this.banner,
      this.listView,
      this.serviceView
    );
    this.listView.append(
      h('h3', {}, 'Services'),
      this.servicesBox,
      h('h3', {}, 'Models'),
      this.modelsBox
    );
    this.stream = new EventStream(
      event => this.onEvent(event),
      (connected, error) => this.setLive(connected, error)
    );
    void this.begin();
  }

  dispose(): void {
    this.stream.stop();
    this.stopTimers();
    super.dispose();
  }

  // -- start-up: the handshake, then data, then the live stream --------------------------------
  private async begin(): Promise<void> {
    let server: { version?: string; api?: number } | null = null;
    try {
      server = await requestAPI<{ version: string; api: number }>('version');
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 404) {
        this.showBanner(`Cannot ask the server for its nbdeploy version: ${messageOf(error)}`);
        return;
      }
    }
    const mismatch = versionMismatch({ version: FRONTEND_VERSION, api: API_VERSION }, server);
    if (mismatch) {
      this.showBanner(mismatch);
      if (!server || server.api !== API_VERSION) {
        return; // another API: do not guess its documents
      }
    }
    await this.refreshAll();
    this.stream.start();
  }

  private async refreshAll(): Promise<void> {
    await Promise.all([this.loadServices(), this.loadModels(), this.loadTargets()]);
  }

  private async loadServices(): Promise<void> {
    try {
      const doc = await requestAPI<{ services: IServiceSummary[]; workspace: string }>('services');
      this.workspaceLine.textContent = `workspace ${doc.workspace}`;
      this.setServices(applyEvent([], { type: 'snapshot', services: doc.services }));
    } catch (error) {
      this.servicesBox.replaceChildren(h('div', { class: 'nbdeploy-error' }, messageOf(error)));
    }
  }

  private async loadModels(): Promise<void> {
    try {
      this.models = (await requestAPI<{ models: IModel[] }>('models')).models;
      this.renderModels();
    } catch (error) {
      this.modelsBox.replaceChildren(h('div', { class: 'nbdeploy-error' }, messageOf(error)));
    }
  }

  private async loadTargets(): Promise<void> {
    try {
      const doc = await requestAPI<{ targets: string[]; environments: string[] }>('targets');
      this.targets = doc.targets;
      this.environments = doc.environments;
    } catch {
      // the deploy form keeps its defaults; the error shows when deploying
    }
  }

  private onEvent(event: WatchEvent): void {
    if (event.type === 'models') {
      void this.loadModels();
      return;
    }
    this.setServices(applyEvent(this.services, event));
  }

  private setLive(connected: boolean, error?: string): void {
    this.live.textContent = connected ? 'live' : 'offline';
    this.live.dataset.connected = String(connected);
    this.live.title = connected ? 'state changes arrive as they happen' : `not connected: ${error ?? ''}`;
  }

  private showBanner(text: string): void {
    this.banner.hidden = false;
    this.banner.textContent = text;
  }

  // -- the services list ---------------------------------------------------------------------------
  private setServices(services: IServiceSummary[]): void {
    if (services === this.services && this.servicesBox.childElementCount) {
      return;
    }
    this.services = services;
    this.renderServices();
    if (this.selected) {
      const current = services.find(s => s.name === this.selected);
      if (current) {
        this.updateServiceHeader(current);
      } else {
        this.markServiceGone();
      }
    }
  }

  private renderServices(): void {
    if (!this.services.length) {
      this.servicesBox.replaceChildren(
        h('div', { class: 'nbdeploy-empty' }, 'No services. Deploy a model version below, with %deploy or the CLI.')
      );
      return;
    }
    this.servicesBox.replaceChildren(...this.services.map(s => this.serviceRow(s)));
  }

  private serviceRow(s: IServiceSummary): HTMLElement {
    const name = h('a', { class: 'nbdeploy-service-name', href: '#' }, s.name);
    name.onclick = event => {
      event.preventDefault();
      void this.openService(s.name);
    };
    const reason = s.state !== 'Healthy' && s.reason ? s.reason : s.failedUpdate?.reason ?? '';
    return h(
      'div',
      { class: 'nbdeploy-service', 'data-service': s.name, 'data-state': s.state },
      h('div', { class: 'nbdeploy-row' }, name, badge(s.state), h('span', { class: 'nbdeploy-target' }, s.target)),
      h('div', { class: 'nbdeploy-revision-line' }, revisionLine(s)),
      reason ? h('div', { class: 'nbdeploy-reason', title: reason }, reason.split('\n')[0]) : null,
      h('div', { class: 'nbdeploy-models-line' }, `models ${s.models.join(', ') || '-'}`),
      s.scoringUri && actionsEnabled(s) ? h('div', { class: 'nbdeploy-uri' }, s.scoringUri) : null
    );
  }

  // -- the service view ----------------------------------------------------------------------------
  private readonly view = {
    title: h('div', { class: 'nbdeploy-view-title' }),
    fields: h('div', { class: 'nbdeploy-fields' }),
    revisions: h('div', { class: 'nbdeploy-revisions' }),
    payload: h('textarea', { class: 'nbdeploy-payload', rows: 4, placeholder: '{"data": [[1, 2, 3]]}' }),
    answer: h('pre', { class: 'nbdeploy-answer', hidden: true }),
    models: h('input', { class: 'nbdeploy-update-models', placeholder: 'name:version, ... (empty: same models)' }),
    rollback: h('select', { class: 'nbdeploy-rollback-select' }),
    status: h('div', { class: 'nbdeploy-op-status' }),
    logs: h('pre', { class: 'nbdeploy-logs' }),
    follow: h('input', { type: 'checkbox', class: 'nbdeploy-follow', checked: true }),
    buttons: [] as HTMLButtonElement[]
  };

  private buildServiceView(): void {
    const v = this.view;
    const back = h('button', { class: 'nbdeploy-button nbdeploy-back' }, '← All services');
    back.onclick = () => this.closeService();
    const send = h('button', { class: 'nbdeploy-button nbdeploy-send' }, 'Send');
    send.onclick = () => void this.score();
    const update = h('button', { class: 'nbdeploy-button nbdeploy-update' }, 'Update / reload');
    update.onclick = () => void this.updateService();
    const roll = h('button', { class: 'nbdeploy-button nbdeploy-rollback' }, 'Roll back');
    roll.onclick = () => void this.rollback();
    const del = h('button', { class: 'nbdeploy-button nbdeploy-danger nbdeploy-delete' }, 'Delete…');
    del.onclick = () => void this.deleteService();
    v.buttons = [send, update, roll];
    this.serviceView.replaceChildren(
      back,
      v.title,
      v.fields,
      v.status,
      h('h4', {}, 'Test'),
      v.payload,
      h('div', { class: 'nbdeploy-row' }, send),
      v.answer,
      h('h4', {}, 'Update'),
      v.models,
      h('div', { class: 'nbdeploy-row' }, update),
      h('h4', {}, 'Roll back'),
      h('div', { class: 'nbdeploy-row' }, v.rollback, roll),
      h('h4', {}, 'Revisions'),
      v.revisions,
      h('h4', {}, 'Log ', h('label', { class: 'nbdeploy-follow-label' }, v.follow, ' follow')),
      v.logs,
      h('div', { class: 'nbdeploy-row nbdeploy-delete-row' }, del)
    );
  }

  private async openService(name: string): Promise<void> {
    this.selected = name;
    if (!this.view.title.isConnected) {
      this.buildServiceView();
    }
    this.view.answer.hidden = true;
    this.view.status.textContent = '';
    this.view.logs.textContent = '';
    this.listView.hidden = true;
    this.serviceView.hidden = false;
    this.serviceView.dataset.service = name;
    const summary = this.services.find(s => s.name === name);
    if (summary) {
      this.updateServiceHeader(summary);
    }
    await this.loadDetail();
    await this.refreshLogs();
    this.startTimers();
  }

  private startTimers(): void {
    this.stopTimers();
    this.logTimer = window.setInterval(() => {
      if (this.view.follow.checked) {
        void this.refreshLogs();
      }
    }, LOG_FOLLOW_MS);
    this.elapsedTimer = window.setInterval(() => {
      const current = this.services.find(s => s.name === this.selected);
      if (current?.inFlight) {
        this.updateServiceHeader(current);
      }
    }, 1000);
  }

  private closeService(): void {
    this.selected = null;
    this.stopTimers();
    this.serviceView.hidden = true;
    this.listView.hidden = false;
  }

  private stopTimers(): void {
    for (const timer of [this.logTimer, this.elapsedTimer]) {
      if (timer !== null) {
        window.clearInterval(timer);
      }
    }
    this.logTimer = this.elapsedTimer = null;
  }

  private updateServiceHeader(s: IServiceSummary): void {
    const v = this.view;
    v.title.replaceChildren(h('h3', {}, s.name), badge(s.state));
    const rows: [string, string | null][] = [
      ['target', s.target],
      ['revision', revisionLine(s)],
      ['reason', s.state !== 'Healthy' ? s.reason : null],
      ['failed update', s.failedUpdate ? `revision ${s.failedUpdate.revision}: ${s.failedUpdate.reason ?? ''}` : null],
      ['models', s.models.join(', ')],
      ['scoring URL', actionsEnabled(s) ? s.scoringUri : null],
      ['auth', s.authEnabled ? 'key auth on' : 'off'],
      ['description', s.description]
    ];
    v.fields.replaceChildren(
      ...rows
        .filter(([, value]) => value)
        .map(([key, value]) => h('div', { class: 'nbdeploy-field', 'data-field': key }, h('b', {}, key), ' ', value ?? ''))
    );
    v.buttons.forEach(b => (b.disabled = !actionsEnabled(s)));
    if (s.revision !== Number(this.serviceView.dataset.revision)) {
      this.serviceView.dataset.revision = String(s.revision);
      void this.loadDetail();
    }
  }

  private markServiceGone(): void {
    this.view.title.replaceChildren(h('h3', {}, this.selected ?? ''), badge('Deleted'));
    this.view.fields.replaceChildren(h('div', { class: 'nbdeploy-empty' }, 'This service no longer exists.'));
    this.view.buttons.forEach(b => (b.disabled = true));
    this.stopTimers();
  }

  private async loadDetail(): Promise<void> {
    const name = this.selected;
    if (!name) {
      return;
    }
    try {
      const detail = await requestAPI<IServiceDetail>(`services/${encodeURIComponent(name)}`);
      if (name !== this.selected) {
        return;
      }
      this.view.revisions.replaceChildren(
        h(
          'table',
          { class: 'nbdeploy-table' },
          h('tr', {}, h('th', {}, 'rev'), h('th', {}, 'outcome'), h('th', {}, 'state'), h('th', {}, 'reason')),
          ...detail.revisions.map(r =>
            h(
              'tr',
              { 'data-revision': r.revision },
              h('td', {}, String(r.revision)),
              h('td', {}, r.outcome),
              h('td', {}, r.state ?? ''),
              h('td', { title: r.reason ?? '' }, (r.reason ?? '').split('\n')[0])
            )
          )
        )
      );
      const earlier = detail.revisions.filter(r => r.revision !== detail.revision && r.outcome !== 'starting');
      this.view.rollback.replaceChildren(
        ...earlier.map(r =>
          h('option', { value: r.revision }, `revision ${r.revision} (${r.outcome}; ${(r.models ?? []).join(', ')})`)
        )
      );
      this.view.rollback.disabled = !earlier.length;
    } catch (error) {
      this.view.status.textContent = messageOf(error);
    }
  }

  private async refreshLogs(): Promise<void> {
    const name = this.selected;
    if (!name) {
      return;
    }
    try {
      const doc = await requestAPI<{ logs: string }>(`services/${encodeURIComponent(name)}/logs?lines=200`);
      const logs = this.view.logs;
      const atBottom = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4;
      if (logs.textContent !== doc.logs) {
        logs.textContent = doc.logs || '(empty)';
        if (atBottom || this.view.follow.checked) {
          logs.scrollTop = logs.scrollHeight;
        }
      }
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        this.stopTimers();
      }
    }
  }

  private async operation(label: string, run: () => Promise<unknown>, reload = true): Promise<boolean> {
    const status = this.view.status;
    status.className = 'nbdeploy-op-status';
    status.textContent = `${label}…`;
    let ok = true;
    try {
      await run();
      status.textContent = `${label}: done`;
    } catch (error) {
      ok = false;
      status.className = 'nbdeploy-op-status nbdeploy-error';
      status.textContent = `${label} failed: ${messageOf(error)}`;
    }
    if (reload) {
      await this.loadDetail();
    }
    return ok;
  }

  private async score(): Promise<void> {
    const name = this.selected!;
    const answer = this.view.answer;
    answer.hidden = false;
    answer.className = 'nbdeploy-answer';
    answer.textContent = 'sending…';
    try {
      const doc = await postJSON<{ result: unknown }>(`services/${encodeURIComponent(name)}/score`, {
        payload: this.view.payload.value
      });
      answer.textContent = typeof doc.result === 'string' ? doc.result : JSON.stringify(doc.result, null, 2);
    } catch (error) {
      answer.className = 'nbdeploy-answer nbdeploy-error';
      const body = error instanceof ApiError ? (error.body as { body?: string }) : null;
      answer.textContent = messageOf(error).split('\nMore information')[0] + (body?.body && !messageOf(error).includes(body.body) ? `\n${body.body}` : '');
    }
  }

  private async updateService(): Promise<void> {
    const name = this.selected!;
    const models = this.view.models.value
      .split(/[\s,]+/)
      .map(m => m.trim())
      .filter(Boolean);
    await this.operation(models.length ? `update to ${models.join(', ')}` : 'reload', () =>
      postJSON(`services/${encodeURIComponent(name)}/update`, models.length ? { models } : {})
    );
  }

  private async rollback(): Promise<void> {
    const name = this.selected!;
    const revision = Number(this.view.rollback.value);
    await this.operation(`roll back to revision ${revision}`, () =>
      postJSON(`services/${encodeURIComponent(name)}/rollback`, { revision })
    );
  }

  private async deleteService(): Promise<void> {
    const name = this.selected!;
    const result = await showDialog({
      title: `Delete ${name}?`,
      body: `This stops every revision of ${name} and removes its records. Its model versions stay registered.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (!result.button.accept) {
      return;
    }
    this.stopTimers(); // no log or detail reads racing the delete (they would answer 404)
    const deleted = await this.operation(
      `delete ${name}`,
      () => requestAPI(`services/${encodeURIComponent(name)}`, { method: 'DELETE' }),
      false
    );
    if (deleted && this.selected === name) {
      this.closeService();
    } else if (!deleted && this.selected === name) {
      this.startTimers();
    }
  }

  // -- the registry and the deploy form ------------------------------------------------------------
  private renderModels(): void {
    if (this.modelsBox.querySelector('.nbdeploy-deploy-form')) {
      this.modelsStale = true; // never redraw under an open deploy form; redrawn when it closes
      return;
    }
    this.modelsStale = false;
    if (!this.models.length) {
      this.modelsBox.replaceChildren(
        h('div', { class: 'nbdeploy-empty' }, 'No models registered. Use Model.register(), %register_model or nbdeploy model register.')
      );
      return;
    }
    const open = new Set(
      [...this.modelsBox.querySelectorAll('details[open]')].map(d => (d as HTMLElement).dataset.model)
    );
    this.modelsBox.replaceChildren(
      ...this.models.map(model => {
        const details = h(
          'details',
          { class: 'nbdeploy-model', 'data-model': model.name },
          h('summary', {}, `${model.name} `, h('span', { class: 'nbdeploy-muted' }, `${model.versions.length} version(s), latest ${model.latest}`))
        );
        // versions are drawn when opened: 2,000 versions cost nothing until looked at
        const draw = () => {
          if (details.open && details.childElementCount === 1) {
            details.append(...model.versions.map(v => this.versionRow(v)));
          }
        };
        details.addEventListener('toggle', draw);
        if (open.has(model.name)) {
          details.open = true;
          draw();
        }
        return details;
      })
    );
  }

  private versionRow(v: IModelVersion): HTMLElement {
    const deploy = h('button', { class: 'nbdeploy-button nbdeploy-deploy-open' }, 'Deploy…');
    const row = h(
      'div',
      { class: 'nbdeploy-version', 'data-id': v.id },
      h(
        'div',
        { class: 'nbdeploy-row' },
        h('b', {}, `${v.name}:${v.version}`),
        h('span', { class: 'nbdeploy-muted' }, v.sizeText),
        deploy
      ),
      v.description ? h('div', { class: 'nbdeploy-muted' }, v.description) : null,
      Object.keys(v.tags).length
        ? h('div', { class: 'nbdeploy-tags' }, ...Object.entries(v.tags).map(([k, val]) => h('span', { class: 'nbdeploy-tag' }, `${k}=${val}`)))
        : null,
      h('div', { class: 'nbdeploy-muted' }, v.usedBy.length ? `used by ${v.usedBy.join(', ')}` : 'not deployed')
    );
    deploy.onclick = () => {
      const existing = row.querySelector('.nbdeploy-deploy-form');
      if (existing) {
        existing.remove();
        if (this.modelsStale) {
          this.renderModels();
        }
      } else {
        row.append(this.deployForm(v));
      }
    };
    return row;
  }

  private deployForm(v: IModelVersion): HTMLElement {
    const name = h('input', { class: 'nbdeploy-deploy-name', placeholder: 'service name (3-32: a-z, 0-9, -)' });
    const entry = h('input', { class: 'nbdeploy-deploy-entry', placeholder: 'entry script, e.g. score.py', value: 'score.py' });
    const env = h('select', { class: 'nbdeploy-deploy-env' }, h('option', { value: '' }, '(no environment: the server’s Python)'),
      ...this.environments.map(e => h('option', { value: e }, e)));
    const target = h('select', { class: 'nbdeploy-deploy-target' }, ...this.targets.map(t => h('option', { value: t, selected: t === 'process' }, t)));
    const overwrite = h('input', { type: 'checkbox', class: 'nbdeploy-deploy-overwrite' });
    const go = h('button', { class: 'nbdeploy-button nbdeploy-deploy-go' }, `Deploy ${v.id}`);
    const status = h('div', { class: 'nbdeploy-op-status' });
    go.onclick = async () => {
      go.disabled = true;
      status.className = 'nbdeploy-op-status';
      status.textContent = 'starting…';
      try {
        const s = await postJSON<IServiceSummary>('services', {
          name: name.value,
          models: [v.id],
          entryScript: entry.value,
          environment: env.value || null,
          target: target.value,
          overwrite: overwrite.checked
        });
        status.textContent = `${s.name} started; its state shows in the services list.`;
      } catch (error) {
        status.className = 'nbdeploy-op-status nbdeploy-error';
        status.textContent = messageOf(error);
      } finally {
        go.disabled = false;
      }
    };
    const label = (text: string, input: HTMLElement) => h('label', { class: 'nbdeploy-form-row' }, h('span', {}, text), input);
    return h(
      'div',
      { class: 'nbdeploy-deploy-form' },
      label('name', name),
      label('entry script', entry),
      label('environment', env),
      label('target', target),
      label('overwrite', overwrite),
      go,
      status
    );
  }
}
