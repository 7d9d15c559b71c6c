// tracefs backend: software packet drops from the skb:kfree_skb tracepoint, read as binary ring-buffer pages from a
// private tracefs instance, for kernels without NET_DM. Pure: format.ts, page.ts (parsers, decoder), reader-core.ts
// (the reader's record visit, over reader-counts.ts, reader-packets.ts and reader-loss.ts: summary counts and chains,
// packet batch, loss ledger), reader-policy.ts (its timing and the chain gate). OS: instance.ts, guard.ts (putting
// back what others change in our instance), reader-worker.ts (worker thread, the reader's poll loop) and
// reader-chains.ts (its side of the chain instance). The Backend implementation: backend.ts, opened by
// openTracefsBackend.
export { openTracefsBackend, TracefsBackend, type TracefsOptions } from './backend.js';
export {
  cleanupTracefsSync,
  findTracefs,
  reclaimStale,
  TracefsInstance,
  DEFAULT_TRACEFS,
  DEFAULT_PREFIX,
} from './instance.js';
export { systemClock, wallClockOffset, type Clock } from './clock.js';
export {
  parseEventFormat,
  parseHeaderPage,
  parseHeaderEvent,
  parseCpuStats,
  parsePrintSymbolic,
  parseLastErrorLog,
  kfreeSkbLayout,
  type EventFormat,
  type KfreeSkbLayout,
} from './format.js';
export { decodePage, decodeKfreeSkbPage, type KfreeSkbRecord, type PageInfo } from './page.js';
