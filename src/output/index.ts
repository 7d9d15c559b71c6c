// Text output for the CLI: dropwatch-compatible summary lines, packet blocks, show and stats, with optional colour.

export {
  formatAsctime,
  formatChain,
  formatFlow,
  formatFrame,
  formatStackLines,
  formatLostLine,
  formatLostTotal,
  formatOverflowLine,
  formatPacket,
  formatPointer,
  formatShow,
  formatStats,
  formatSummaryLine,
  formatSymbolNotice,
  formatTimestamp,
  type FrameResolver,
  type PacketStyle,
  type Style,
} from './format.js';
