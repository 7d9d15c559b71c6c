// The run's filter control without the filter language: engine/filter.ts and the parser load only once a filter is
// given, on the command line or at the prompt, so a run without one starts without them.
import type { AlertMode, Backend, SourceInfo } from '../backend/types.js';
import type { Expr } from '../filter/index.js';
import type { FilterControl } from './filter.js';
import type { DropPredicate, FilterCompiler, SymbolNames, WorkloadSource } from './types.js';

/** Refuses a --filter this run cannot evaluate (an unknown flow or workload field, too long for the kernel). */
export async function refuseFilter(
  backend: Backend,
  expr: Expr | null,
  mode: AlertMode | null,
  sources: readonly SourceInfo[],
): Promise<void> {
  if (expr === null) return;
  const { requireKnownFields, requireKernelFit } = await import('./filter.js');
  await requireKnownFields(backend, expr, mode, sources);
  await requireKernelFit(backend, expr, mode);
}

/** The real control at once for a run with a --filter; else one that loads it with the first filter set. */
export async function openFilterControl(
  backend: Backend,
  symbols: SymbolNames,
  base: Expr | null,
  workloads: WorkloadSource,
  sources: readonly SourceInfo[],
): Promise<FilterControl> {
  if (base !== null)
    return (await import('./filter.js')).createFilterControl(backend, symbols, base, workloads, sources);
  return new LazyFilter({ backend, symbols, workloads, sources });
}

interface FilterParts {
  backend: Backend;
  symbols: SymbolNames;
  workloads: WorkloadSource;
  sources: readonly SourceInfo[];
}

/** No filter in force until the first is applied: until then nothing to test, check or refuse. */
class LazyFilter implements FilterControl {
  private real: FilterControl | null = null;
  private loading: Promise<FilterControl> | null = null;
  readonly compiler: FilterCompiler = {
    apply: async (text) => (await this.load()).compiler.apply(text),
    check: async () => (await this.real?.compiler.check?.()) ?? null,
    refuseMode: async (mode) => (await this.real?.compiler.refuseMode?.(mode)) ?? null,
    refuseStart: async () => (await this.real?.compiler.refuseStart?.()) ?? null,
  };

  constructor(private readonly parts: FilterParts) {}

  readonly predicate = (): DropPredicate | null => this.real?.predicate() ?? null;

  describe(): string | null {
    return this.real?.describe() ?? null;
  }

  async applyExpr(expr: Expr | null, mode: AlertMode | null = null): Promise<string> {
    return (await this.load()).applyExpr(expr, mode);
  }

  private load(): Promise<FilterControl> {
    return (this.loading ??= import('./filter.js').then(({ createFilterControl }) => {
      const { backend, symbols, workloads, sources } = this.parts;
      return (this.real = createFilterControl(backend, symbols, null, workloads, sources));
    }));
  }
}
