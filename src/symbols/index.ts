// Kernel address → symbol resolution from /proc/kallsyms: the pure index, its background loader, and dropwatch's rescan method for comparison.

export { KallsymsBuilder, KallsymsIndex, parseKallsyms, type Resolved } from './kallsyms.js';
export {
  KALLSYMS_PATH,
  cachedResolver,
  loadSymbolTable,
  symbolTableFromText,
  type LoadOptions,
  type SymbolStatus,
  type SymbolTable,
} from './loader.js';
export { createRescanResolver } from './rescan.js';
