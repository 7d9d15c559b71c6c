// IP addresses from packet bytes to text: dotted IPv4, and IPv6 as inet_ntop (RFC 5952) writes it.

/** Dotted quad of the 4 bytes at `off`; the caller has checked they are there. */
export function ipv4Text(b: Uint8Array, off: number): string {
  return `${b[off]!}.${b[off + 1]!}.${b[off + 2]!}.${b[off + 3]!}`;
}

/**
 * The 16 bytes at `off` as inet_ntop writes them (glibc, libuv, tcpdump and tshark agree): lower-case hex without
 * leading zeros, the first longest run of two or more zero groups as `::`, and the last 32 bits dotted for
 * IPv4-mapped (`::ffff:a.b.c.d`) and IPv4-compatible (`::a.b.c.d`, but not `::` or `::1`) addresses. Written here
 * rather than through `net.SocketAddress`, which parses text only and costs a native call per address.
 */
export function ipv6Text(b: Uint8Array, off: number): string {
  const groups = new Array<number>(8);
  for (let i = 0; i < 8; i++) groups[i] = (b[off + 2 * i]! << 8) | b[off + 2 * i + 1]!;
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) bestStart = -1;
  // inet_ntop's rule for an embedded IPv4 address: the zero run starts the address and is 6 groups, or 5 then ffff.
  const embedded = bestStart === 0 && (bestLen === 6 || (bestLen === 5 && groups[5] === 0xffff));
  const last = embedded ? 6 : 8;
  let text = '';
  for (let i = 0; i < last; i++) {
    if (i === bestStart) {
      text += '::';
      i += bestLen - 1;
      continue;
    }
    if (text !== '' && !text.endsWith(':')) text += ':';
    text += groups[i]!.toString(16);
  }
  if (embedded) text += `${text.endsWith(':') ? '' : ':'}${ipv4Text(b, off + 12)}`;
  return text;
}
