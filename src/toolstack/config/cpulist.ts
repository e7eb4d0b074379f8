/**
 * xl's CPULIST (xl.cfg(5) `cpus=`, `xl vcpu-pin`): "all", or comma-separated CPUs and ranges,
 * each optionally negated with `^` to take it out of what the items before it chose:
 * "0-3,^1" is CPUs 0, 2 and 3; "all,^0" every CPU but 0. NUMA node lists ("nodes:") have no
 * meaning on this host model and are refused, as is anything naming a CPU the host lacks.
 */

/** The CPUs `text` names, ascending; throws an Error saying what is wrong (the caller adds where). */
export function parseCpuList(text: string, hostCpus: number): number[] {
  const chosen = new Set<number>();
  const items = text.split(',').map((s) => s.trim());
  for (const item of items) {
    if (item === '') throw new Error(`empty item in CPU list \`${text}'`);
    if (/^\^?nodes:/.test(item)) throw new Error(`\`${item}': NUMA node lists are not supported (this host has one node); name CPUs`);
    const negate = item.startsWith('^');
    const body = negate ? item.slice(1) : item;
    for (const cpu of cpuRange(body, hostCpus)) {
      if (negate) chosen.delete(cpu);
      else chosen.add(cpu);
    }
  }
  if (chosen.size === 0) throw new Error(`CPU list \`${text}' leaves no CPU`);
  return [...chosen].sort((a, b) => a - b);
}

function cpuRange(body: string, hostCpus: number): number[] {
  if (body === 'all') return Array.from({ length: hostCpus }, (_, i) => i);
  const m = /^(\d{1,6})(?:-(\d{1,6}))?$/.exec(body);
  if (m === null) throw new Error(`\`${body}' is not a CPU, a range like 2-5, or all`);
  const first = Number(m[1]);
  const last = m[2] === undefined ? first : Number(m[2]);
  if (last < first) throw new Error(`range \`${body}' runs backwards`);
  if (last >= hostCpus) throw new Error(`CPU ${last} does not exist (this host has CPUs 0-${hostCpus - 1})`);
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

/** A CPU set as xl prints it ("all", or ranges: "0-2,5"). */
export function formatCpuList(cpus: readonly number[], hostCpus: number): string {
  if (cpus.length === hostCpus && cpus.every((c, i) => c === i)) return 'all';
  const parts: string[] = [];
  for (let i = 0; i < cpus.length; ) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j]! + 1) j++;
    parts.push(j === i ? `${cpus[i]}` : `${cpus[i]}-${cpus[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}
