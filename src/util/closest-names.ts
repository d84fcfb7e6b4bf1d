// "Did you mean ...?": the known names closest to a mistyped one by edit distance
// (Levenshtein), as git and commander suggest commands.

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur.push(Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * Up to `max` known names nearest to `name` (case ignored), none further than a third of
 * the name's length (at least 2) away: `resnt20` finds resnet20, `xyz` finds nothing.
 */
export function closestNames(name: string, known: readonly string[], max = 3): string[] {
  const text = name.toLowerCase().slice(0, 100);
  const limit = Math.max(2, Math.floor(text.length / 3));
  const scored = known.map((k) => ({ k, d: editDistance(text, k.toLowerCase()) })).filter((s) => s.d <= limit);
  const best = Math.min(...scored.map((s) => s.d));
  return scored.filter((s) => s.d === best).slice(0, max).map((s) => s.k);
}
