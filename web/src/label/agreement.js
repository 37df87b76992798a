// Inter-annotator agreement (Cohen's / Fleiss' κ, Krippendorff's α; METHODS.md §3.7) is the core's eval module's
// job, reached through the model worker. This page computes none of it: until the package exports `agreement`, it
// says so.

export const AGREEMENT_MISSING = "agreement needs the core's eval module";

/** The label table the core takes: one row per (item, annotator) judgement; skips are not judgements. */
export function agreementTable(labels) {
  return labels.filter((l) => !l.value.skip).map((l) => ({ item: l.item, annotator: l.annotator, label: l.value }));
}

/**
 * Asks the worker for `alignlab.agreement(table)`.
 * @returns {Promise<{ available: false } | { available: true, result: unknown }>}
 */
export function agreement(client, table) {
  return client.request('agreement', { table });
}
