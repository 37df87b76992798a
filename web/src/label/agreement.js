// Inter-annotator agreement (Cohen's / Fleiss' κ, Krippendorff's α; METHODS.md §3.7) is the core's eval module's
// job, reached through the model worker as `alignlab.agreement(table, { level })`. This file only shapes the
// label tables and words the reports; a package without `agreement` is said to lack it.

export const AGREEMENT_MISSING = "agreement needs the core's eval module";

/**
 * The tables the core takes ({item, annotator, label}[] with integer or string labels), one per judgement a task
 * makes, with the level of measurement of its labels. Pairwise: the preference for the item's first response,
 * −3..3 by strength (ordinal; "both bad" is no preference, 0, like a tie); listwise: the whole ranking as one
 * category; rating: one interval table per attribute; thumbs: up / down. Skips are not judgements.
 */
export function agreementTables(task, labels, attributes = []) {
  const judged = labels.filter((l) => !l.value.skip);
  const table = (label) => judged.map((l) => ({ item: l.item, annotator: l.annotator, label: label(l.value) }));
  if (task === 'pairwise') {
    const preference = (v) => (v.winner === null ? 0 : (v.winner === 0 ? 1 : -1) * v.strength);
    return [{ name: 'preference', level: 'ordinal', table: table(preference) }];
  }
  if (task === 'listwise') {
    return [{ name: 'ranking', level: 'nominal', table: table((v) => v.ranking.map((g) => g.join('=')).join('>')) }];
  }
  if (task === 'rating') return attributes.map((a) => ({ name: a, level: 'interval', table: table((v) => v.attributes[a]) }));
  if (task === 'thumbs') return [{ name: 'thumbs', level: 'nominal', table: table((v) => (v.label ? 'up' : 'down')) }];
  throw new TypeError(`unknown task type ${task}`);
}

const num = (x) => (x === null || x === undefined ? 'n/a' : x.toFixed(3));

/** One line of a report: α at its level, Fleiss' κ, mean pairwise Cohen's κ, and what they were computed over. */
export function describeReport(name, report) {
  return (
    `${name}: Krippendorff α (${report.level}) ${num(report.alpha)}, Fleiss κ ${num(report.fleiss_kappa)}, ` +
    `mean Cohen κ ${num(report.mean_cohen_kappa)} — ${report.items} items, ${report.raters} annotators, ` +
    `${report.unanimous} unanimous`
  );
}

/**
 * Asks the worker for `alignlab.agreement(table, { level })`.
 * @returns {Promise<{ available: false } | { available: true, result: object }>}
 */
export function agreement(client, table, level) {
  return client.request('agreement', { table, options: { level } });
}
