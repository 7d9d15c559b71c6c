// Drop filters: the --filter / `set filter` expression language (parse, evaluate, the flow fields), --ignore-reason,
// and the split of a filter for a kernel (an skb:kfree_skb ftrace event filter, or per-field sets for a BPF program)
// plus a user-space rest.

export {
  conjoin,
  fieldsOf,
  format,
  unknownReasons,
  FIELDS,
  FLOW_FIELDS,
  FIELD_ALIASES,
  NAMED_FIELDS,
  WORKLOAD_FIELDS,
  type Expr,
  type Field,
  type TextField,
  type NumberField,
  type CmpExpr,
  type MatchExpr,
  type AddrExpr,
  type AddressField,
} from './ast.js';
export { FilterSyntaxError } from './error.js';
export { parse, ignoreReasons, normalizeReason, PROTOCOL_NAMES, MAX_LENGTH, MAX_DEPTH } from './parser.js';
export {
  compile,
  constantWithout,
  symbolName,
  recordFromPacket,
  recordFromSummary,
  selectPlaces,
  type FilterRecord,
  type NamesOf,
  type Predicate,
} from './evaluate.js';
export { pushdown, KERNEL_FILTER_MAX, MAX_REASON_RANGES, type Pushdown } from './pushdown.js';
export { pushdownSets, type SetPushdown } from './sets.js';
