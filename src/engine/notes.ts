// The lines `help` adds after dropwatch's text: what this backend lacks, what packet mode carries, the filter fields.
import type { BackendCapabilities, DropField } from '../backend/types.js';
import type { CapabilityWords } from '../backend/words.js';
import { FIELDS, FLOW_FIELDS, WORKLOAD_FIELDS } from '../filter/fields.js';

const FIELD_WORDS: Partial<Record<DropField, string>> = {
  reason: 'reason',
  protocol: 'protocol',
  time: 'time',
  device: 'input device',
  trap: 'trap',
  stack: 'call chain',
  flow: 'flow',
  process: 'process',
};

export function helpNotes(capabilities: BackendCapabilities, words: CapabilityWords): string[] {
  const { modes, fields } = capabilities;
  const notes = words.helpNotes();
  if (modes.includes('packet') && !fields.packet.includes('payload'))
    notes.push(`Packet mode here reports ${describeFields(fields.packet)} for each drop, without the packet.`);
  if (fields.packet.includes('flow'))
    notes.push(
      'Packet mode ends each drop with its flow, e.g. "flow: IP 10.0.0.1.40001 > 10.0.0.2.9: UDP, length 1"; ' +
        'JSON has it as l3, src, dst, l4, sport, dport.',
    );
  notes.push(filterFieldsNote(capabilities, words));
  return notes;
}

/** The filter's fields, and where this backend knows the flow and workload ones (set filter refuses them elsewhere). */
function filterFieldsNote({ modes, fields }: BackendCapabilities, words: CapabilityWords): string {
  const always = FIELDS.filter((f) => !FLOW_FIELDS.includes(f) && !WORKLOAD_FIELDS.includes(f)).join(', ');
  const flow = FLOW_FIELDS.join(', ');
  const flowIn = modes.filter((m) => fields[m].includes('flow'));
  const note =
    flowIn.length > 0
      ? `Filter fields: ${always}; in ${flowIn.join(' and ')} mode also ${flow} (e.g. dport == 53 && dst in 10.0.0.0/8)`
      : `Filter fields: ${always}; the flow fields (${flow}) ${words.flowNeeds()}`;
  const workload = WORKLOAD_FIELDS.join(', ');
  const placed = modes.some((m) => fields[m].includes('netns'));
  return placed
    ? `${note}; where the drop happened also ${workload} (e.g. container == web), and dev for ifname.`
    : `${note}; the workload fields (${workload}) ${words.workloadNeeds()}; dev is ifname.`;
}

/** "location, reason, protocol and time": what a packet-mode drop carries, in words. */
function describeFields(fields: readonly DropField[]): string {
  const words = ['location', ...fields.flatMap((f) => FIELD_WORDS[f] ?? [])];
  return words.length === 1 ? words[0]! : `${words.slice(0, -1).join(', ')} and ${words.at(-1)!}`;
}
