// An in-memory drop source for unit tests of the session, the views and the outputs: events on demand, no kernel.
import type {
  Backend,
  BackendCapabilities,
  BackendEvent,
  BackendName,
  EventListener,
  MonitorConfig,
} from '../../src/backend/types.js';

/** tracefs-like capabilities with no kernel filter: both modes, no NET_DM settings, reasons only. */
export const SOFTWARE_ONLY: BackendCapabilities = {
  modes: ['summary', 'packet'],
  settings: { trunc: false, queue: false, hw: false },
  fields: { summary: ['reason'], packet: ['reason'] },
  reasons: null,
  kernelFilter: null,
};

export type MemoryBackend = Backend & { emit(e: BackendEvent): void };

/**
 * A backend whose every request succeeds at once; `emit` delivers an event to the listener the session installed.
 * It keeps the configuration it is given, as a kernel does, so the alert mode set is the one reported.
 */
export function memoryBackend(
  capabilities: BackendCapabilities = SOFTWARE_ONLY,
  name: BackendName = 'tracefs',
): MemoryBackend {
  let listener: EventListener = () => {};
  let config: MonitorConfig = { alertMode: 'summary', truncLen: 0, queueLen: 0 };
  return {
    name,
    capabilities,
    onEvent: (l) => (listener = l),
    emit: (e) => listener(e),
    start: async () => {},
    stop: async () => {},
    setConfig: async (change) => {
      config = { ...config, ...change };
    },
    getConfig: async () => config,
    getStats: async () => ({ lost: [] }),
    close: async () => {},
  };
}
