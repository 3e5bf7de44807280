/** Calls to the server extension (nbdeploy.jupyter) with the server's own auth and XSRF, and the event stream. */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { WatchEvent, errorMessage, parseEventStream } from './logic';

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly body: unknown
  ) {
    super(message);
  }
}

function apiUrl(settings: ServerConnection.ISettings, endPoint: string): string {
  return URLExt.join(settings.baseUrl, 'nbdeploy', 'api', endPoint);
}

/** JSON from `/nbdeploy/api/<endPoint>`; an error answer becomes an ApiError carrying the server's message. */
export async function requestAPI<T>(endPoint: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(apiUrl(settings, endPoint), init, settings);
  } catch (error) {
    throw new ApiError(`cannot reach the Jupyter server: ${error}`, 0, null);
  }
  const text = await response.text();
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    throw new ApiError(errorMessage(response.status, data), response.status, data);
  }
  return data as T;
}

export function postJSON<T>(endPoint: string, body: unknown, method = 'POST'): Promise<T> {
  return requestAPI<T>(endPoint, { method, body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });
}

/**
 * The server's event stream (`/nbdeploy/api/events`, server-sent events) read with fetch, so the request
 * carries the same auth headers as every other call. Reconnects after a second when the stream ends.
 */
export class EventStream {
  private controller: AbortController | null = null;
  private stopped = false;

  constructor(
    private readonly onEvent: (event: WatchEvent) => void,
    private readonly onStatus: (connected: boolean, error?: string) => void
  ) {}

  start(): void {
    this.stopped = false;
    void this.loop();
  }

  stop(): void {
    this.stopped = true;
    this.controller?.abort();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.readOnce();
        this.onStatus(false, 'the event stream ended; reconnecting');
      } catch (error) {
        if (this.stopped) {
          return;
        }
        this.onStatus(false, error instanceof Error ? error.message : String(error));
      }
      await new Promise(resolve => setTimeout(resolve, 1000));
    }
  }

  private async readOnce(): Promise<void> {
    const settings = ServerConnection.makeSettings();
    this.controller = new AbortController();
    const response = await ServerConnection.makeRequest(
      apiUrl(settings, 'events'),
      { signal: this.controller.signal, cache: 'no-store' },
      settings
    );
    if (!response.ok || !response.body) {
      const text = await response.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON
      }
      throw new ApiError(errorMessage(response.status, body), response.status, body);
    }
    this.onStatus(true);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        return;
      }
      buffer += decoder.decode(value, { stream: true });
      const parsed = parseEventStream(buffer);
      buffer = parsed.rest;
      parsed.events.forEach(event => this.onEvent(event));
    }
  }
}
