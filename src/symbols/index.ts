// Kernel address → symbol resolution from /proc/kallsyms: the pure index and its background loader.

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
export { hiddenCause, readAddressVisibility, type AddressVisibility } from './visibility.js';
