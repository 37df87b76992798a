// The Label view: projects (create, rename, duplicate, delete, import/merge), their setup and candidates, exports,
// agreement, and the Labeler for the selected project. Everything from data is written as text, never as HTML.
import { LabelStore } from './store.js';
import { Labeler } from './labeler.js';
import { DEFAULT_ATTRIBUTES, DEFAULT_TAGS, TASKS } from './tasks.js';
import { renderMarkdown } from './render.js';
import { AGREEMENT_MISSING, agreement, agreementTables, describeReport } from './agreement.js';
import {
  candidateItems,
  candidatesPerPrompt,
  labelsJsonl,
  newProject,
  newerLabels,
  parseCandidates,
  parsePrompts,
  projectFile,
  readProjectFile,
  stableStringify,
  trainingJsonl,
} from './formats.js';

const $ = (id) => document.getElementById(id);
const SELECTED = 'alignlab.label.project';
const ANNOTATOR = 'alignlab.annotator';
const DEFAULT_ANNOTATOR = 'annotator-1';

/** A text field, select or button has the keyboard: the labelling keys leave it alone. */
function isTyping(target) {
  return target instanceof HTMLElement && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));
}

function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

const slug = (name) => name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'project';

/**
 * Starts the view (once, when first shown).
 * @param {{ client: import('../protocol.js').WorkerClient, onTrain: (jsonl: string, file: string) => void,
 *   isShown: () => boolean }} options
 */
export async function startLabelView({ client, onTrain, isShown }) {
  const el = {
    error: $('label-error'),
    projectList: $('project-list'),
    newProject: $('project-new'),
    duplicate: $('project-duplicate'),
    remove: $('project-delete'),
    importProject: $('project-import'),
    projectsStatus: $('projects-status'),
    form: $('project-form'),
    candidatesFile: $('candidates-file'),
    candidatesSample: $('candidates-sample'),
    candidatesAdd: $('candidates-add'),
    candidatesText: $('candidates-text'),
    candidatesStatus: $('candidates-status'),
    exportProject: $('export-project'),
    exportLabels: $('export-labels'),
    exportTies: $('export-ties'),
    trainFromLabels: $('train-from-labels'),
    annotators: $('annotators'),
    agreementRun: $('agreement-run'),
    agreementOut: $('agreement-out'),
    annotator: $('annotator'),
    guidelines: $('guidelines-body'),
    generateForm: $('generate-form'),
    generateRun: $('generate-run'),
    generateCancel: $('generate-cancel'),
    generateProgress: $('generate-progress'),
    generateStatus: $('generate-status'),
  };

  const showError = (err) => {
    el.error.textContent = err instanceof Error ? err.message : String(err);
    el.error.hidden = false;
  };
  // the page's own failures (a write that failed, an import that threw) are shown here, never only logged
  const guard = (fn) => async (...args) => {
    el.error.hidden = true;
    try {
      await fn(...args);
    } catch (err) {
      showError(err);
    }
  };

  let store;
  try {
    store = await LabelStore.open();
  } catch (err) {
    showError(err);
    return;
  }
  const labeler = new Labeler({
    store,
    els: {
      item: $('item'),
      list: $('item-list'),
      keys: $('keys'),
      progress: $('progress'),
      pace: $('pace'),
      saveState: $('save-state'),
      message: $('label-message'),
      justification: $('justification'),
      tags: $('tags'),
      others: $('others'),
    },
    onError: showError,
    onLabelsChanged: () => renderAnnotators(),
  });

  let projects = [];
  let current = null;
  el.annotator.value = localStorage.getItem(ANNOTATOR) || DEFAULT_ANNOTATOR;
  const annotator = () => el.annotator.value.trim() || DEFAULT_ANNOTATOR;

  // -------------------------------------------------------------------------------------------------------------
  // Projects

  async function refreshProjects(selectId) {
    projects = (await store.projects()).sort((a, b) => (a.created < b.created ? -1 : 1));
    current = projects.find((p) => p.id === selectId) ?? projects[0] ?? null;
    if (current) localStorage.setItem(SELECTED, current.id);
    renderProjectList();
    renderSetup();
    for (const b of [el.duplicate, el.remove, el.candidatesAdd, el.exportProject, el.exportLabels, el.trainFromLabels, el.agreementRun]) {
      b.disabled = !current;
    }
    el.generateRun.disabled = !current || generating;
    await labeler.open(current, annotator());
    await countOthers();
  }

  function renderProjectList() {
    el.projectList.replaceChildren(
      ...projects.map((p) => {
        const card = document.createElement('button');
        card.type = 'button';
        card.className = 'project-card';
        card.role = 'option';
        card.dataset.id = p.id;
        card.setAttribute('aria-selected', String(p === current));
        const name = document.createElement('strong');
        name.textContent = p.name;
        const meta = document.createElement('span');
        meta.textContent = `${TASKS[p.task].title} · ${p.itemCount.toLocaleString('en-US')} items`;
        card.append(name, meta);
        card.addEventListener('click', guard(() => refreshProjects(p.id)));
        return card;
      }),
    );
  }

  function renderSetup() {
    const form = el.form;
    for (const field of form.elements) field.disabled = !current;
    if (!current) {
      el.guidelines.replaceChildren();
      return;
    }
    form.elements.name.value = current.name;
    form.elements.task.value = current.task;
    form.elements.task.disabled = current.itemCount > 0; // items were shaped for the task on import
    form.elements.attributes.value = current.attributes.join(', ');
    form.elements.tags.value = (current.tags ?? []).join(', ');
    form.elements.guidelines.value = current.guidelines;
    form.querySelector('[data-for="rating"]').hidden = current.task !== 'rating';
    el.guidelines.replaceChildren(...renderMarkdown(current.guidelines || 'No guidelines yet (write them in Setup).'));
  }

  el.form.elements.task.addEventListener('change', () => {
    el.form.querySelector('[data-for="rating"]').hidden = el.form.elements.task.value !== 'rating';
  });

  el.form.addEventListener(
    'submit',
    guard(async (event) => {
      event.preventDefault();
      const form = new FormData(el.form);
      const task = current.itemCount > 0 ? current.task : String(form.get('task'));
      const list = (name) => [...new Set(String(form.get(name) ?? '').split(',').map((a) => a.trim()).filter(Boolean))];
      const attributes = list('attributes');
      if (task === 'rating' && attributes.length === 0) throw new Error('a rating task needs at least one attribute');
      const tags = list('tags');
      await store.putProject({ ...current, name: String(form.get('name')).trim() || current.name, task, attributes, tags, guidelines: String(form.get('guidelines')) });
      await refreshProjects(current.id);
    }),
  );

  el.newProject.addEventListener(
    'click',
    guard(async () => {
      const project = newProject({ name: `Project ${projects.length + 1}`, task: 'pairwise', attributes: DEFAULT_ATTRIBUTES, tags: DEFAULT_TAGS });
      await store.putProject(project);
      await store.persist();
      await refreshProjects(project.id);
    }),
  );

  el.duplicate.addEventListener(
    'click',
    guard(async () => {
      const copy = newProject({ ...current, name: `${current.name} (copy)` });
      await store.putProject(copy);
      await store.addItems(copy, await store.items(current.id));
      await refreshProjects(copy.id);
    }),
  );

  el.remove.addEventListener(
    'click',
    guard(async () => {
      if (!confirm(`Delete ${current.name} with its ${current.itemCount} items and every label? Export it first to keep them.`)) return;
      await store.deleteProject(current.id);
      await refreshProjects(null);
    }),
  );

  // -------------------------------------------------------------------------------------------------------------
  // Candidates

  // A loaded file stays out of the textarea (megabytes of text there make the page crawl); typing or a sample
  // replaces it.
  let candidates = null; // { name, text } of the loaded file
  const candidatesSource = () => candidates ?? { name: 'candidates.jsonl', text: el.candidatesText.value };
  el.candidatesFile.addEventListener(
    'change',
    guard(async () => {
      const file = el.candidatesFile.files?.[0];
      if (!file) return;
      candidates = { name: file.name, text: await file.text() };
      el.candidatesFile.value = '';
      el.candidatesText.value = '';
      el.candidatesStatus.classList.remove('error');
      el.candidatesStatus.textContent = `${file.name} (${(file.size / 1e6).toFixed(1)} MB) loaded: Add to project`;
      el.candidatesStatus.dataset.file = file.name;
    }),
  );
  el.candidatesText.addEventListener('input', () => (candidates = null));
  el.candidatesSample.addEventListener(
    'click',
    guard(async () => {
      const response = await fetch(new URL('truthfulqa-sample.jsonl', document.baseURI));
      if (!response.ok) throw new Error(`truthfulqa-sample.jsonl: HTTP ${response.status}`);
      el.candidatesText.value = await response.text();
      candidates = null;
    }),
  );

  el.candidatesAdd.addEventListener(
    'click',
    guard(async () => {
      const status = el.candidatesStatus;
      const source = candidatesSource();
      const parsed = parseCandidates(source.text, current.task, { file: source.name });
      status.classList.toggle('error', Boolean(parsed.firstError));
      if (parsed.firstError) {
        const more = parsed.bad > 1 ? ` (and ${parsed.bad - 1} more bad lines)` : '';
        status.textContent = `nothing added: ${parsed.firstError}${more}`;
        return;
      }
      if (parsed.items.length === 0) {
        status.textContent = 'nothing to add';
        return;
      }
      const started = performance.now();
      const n = parsed.items.length.toLocaleString('en-US');
      await store.addItems(current, parsed.items, (done) => (status.textContent = `storing ${done.toLocaleString('en-US')} / ${n} items…`));
      status.textContent = `added ${n} item${parsed.items.length === 1 ? '' : 's'}`;
      status.dataset.ms = String(Math.round(performance.now() - started));
      el.candidatesText.value = '';
      candidates = null;
      delete status.dataset.file;
      await refreshProjects(current.id);
    }),
  );

  // Candidates written by the model loaded in the Train view: n per prompt, with progress; Cancel stops after the
  // completion in flight and keeps what was generated.
  let generating = false;
  el.generateRun.addEventListener(
    'click',
    guard(async () => {
      const status = el.generateStatus;
      const source = candidatesSource();
      const { prompts, bad, firstError } = parsePrompts(source.text, { file: source.name });
      status.classList.toggle('error', Boolean(firstError));
      if (firstError) {
        status.textContent = `nothing generated: ${firstError}${bad > 1 ? ` (and ${bad - 1} more bad lines)` : ''}`;
        return;
      }
      if (prompts.length === 0) {
        status.textContent = 'no prompts: write or load JSONL lines with a "prompt" above';
        return;
      }
      const form = new FormData(el.generateForm);
      const number = (name) => (String(form.get(name) ?? '').trim() === '' ? undefined : Number(form.get(name)));
      const project = current;
      const n = candidatesPerPrompt(project.task, number('n'));
      const options = {
        maxNewTokens: number('maxNewTokens') ?? 32,
        temperature: number('temperature'),
        topP: number('topP'),
        seed: number('seed'),
        chatTemplate: form.get('chatTemplate') === 'on',
      };
      generating = true;
      el.generateRun.disabled = true;
      el.generateCancel.disabled = false;
      el.generateProgress.hidden = false;
      el.generateProgress.max = prompts.length;
      el.generateProgress.value = 0;
      const started = performance.now();
      status.textContent = `generating ${n} candidate${n === 1 ? '' : 's'} for each of ${prompts.length} prompts…`;
      try {
        const result = await client.request(
          'generateCandidates',
          { prompts, n, options },
          {
            onEvent: (m) => {
              if (m.type !== 'candidates') return;
              el.generateProgress.value = m.done;
              status.textContent = `generated ${m.done} / ${m.total} prompts (${n} candidates each)…`;
            },
          },
        );
        const items = candidateItems(project.task, result.items);
        if (items.length) await store.addItems(project, items);
        const seconds = ((performance.now() - started) / 1000).toFixed(1);
        const same = result.items.filter((it) => new Set(it.responses.map(String)).size < it.responses.length).length;
        status.dataset.added = String(items.length);
        status.dataset.cancelled = String(result.cancelled);
        status.textContent =
          (result.cancelled ? `cancelled after ${result.items.length} of ${prompts.length} prompts: ` : '') +
          `added ${items.length} item${items.length === 1 ? '' : 's'} in ${seconds} s` +
          (result.sampled ? '' : ' (greedy decoding: this build of the package does not sample)') +
          (same ? `; ${same} prompt${same === 1 ? ' has' : 's have'} identical candidates` : '');
        if (current?.id === project.id) await refreshProjects(project.id);
      } catch (err) {
        status.textContent = 'nothing generated';
        throw err;
      } finally {
        generating = false;
        el.generateRun.disabled = !current;
        el.generateCancel.disabled = true;
        el.generateProgress.hidden = true;
      }
    }),
  );
  el.generateCancel.addEventListener('click', () => {
    el.generateCancel.disabled = true;
    client.request('cancelGenerate');
  });

  // -------------------------------------------------------------------------------------------------------------
  // Export, import, merge, train, agreement

  /** Every label of the project with its item: `{ item, label }`, by item then annotator. */
  async function labelRows() {
    const labels = await store.labels(current.id);
    const items = await store.items(current.id);
    return labels
      .sort((a, b) => a.item - b.item || (a.annotator < b.annotator ? -1 : a.annotator > b.annotator ? 1 : 0))
      .map((label) => ({ item: items[label.item], label }));
  }

  el.exportProject.addEventListener(
    'click',
    guard(async () => {
      const text = projectFile(current, await store.items(current.id), await store.labels(current.id));
      download(`${slug(current.name)}.alignlab.json`, text, 'application/json');
    }),
  );

  el.exportLabels.addEventListener(
    'click',
    guard(async () => {
      const text = labelsJsonl(current.task, await labelRows(), { keepTies: el.exportTies.checked, tags: current.tags ?? [] });
      download(`${slug(current.name)}.${current.task}.jsonl`, text, 'application/jsonl');
    }),
  );

  el.trainFromLabels.addEventListener(
    'click',
    guard(async () => {
      const jsonl = trainingJsonl(current.task, await labelRows(), { tags: current.tags ?? [] });
      if (!jsonl) throw new Error('no labels with a preference yet (ties and skips do not train)');
      onTrain(jsonl, `${slug(current.name)}.labels.jsonl`);
    }),
  );

  el.importProject.addEventListener(
    'change',
    guard(async () => {
      const files = [...(el.importProject.files ?? [])];
      el.importProject.value = '';
      let last = current?.id;
      const said = [];
      for (const file of files) {
        const { project, items, labels } = readProjectFile(await file.text(), file.name);
        const here = await store.project(project.id);
        if (here) {
          // the same project labelled elsewhere: its labels join these, side by side by annotator
          const same = (xs) => stableStringify(xs.map(({ index, prompt, responses }) => ({ index, prompt, responses })));
          if (same(await store.items(here.id)) !== same(items)) {
            throw new Error(`${file.name}: ${project.name} has other items than the project here; not merged`);
          }
          const fresh = newerLabels(await store.labels(here.id), labels);
          await store.putLabels(fresh);
          said.push(`${file.name}: merged ${fresh.length} labels`);
        } else {
          const empty = { ...project, itemCount: 0 };
          await store.putProject(empty);
          const stored = await store.addItems(empty, items);
          await store.putLabels(labels);
          said.push(`${file.name}: imported ${stored.name} (${items.length} items, ${labels.length} labels)`);
        }
        last = project.id;
      }
      await refreshProjects(last);
      el.projectsStatus.textContent = said.join('; ');
    }),
  );

  // Labels per annotator: the others' counted once per project opened (or merged), this annotator's from the
  // Labeler, so that a label costs no read of every label.
  let otherCounts = new Map();

  async function countOthers() {
    otherCounts = new Map();
    for (const l of current ? await store.labels(current.id) : []) {
      if (l.annotator !== annotator()) otherCounts.set(l.annotator, (otherCounts.get(l.annotator) ?? 0) + 1);
    }
    renderAnnotators();
  }

  function renderAnnotators() {
    const counts = new Map(otherCounts);
    if (labeler.mine.size) counts.set(annotator(), labeler.mine.size);
    const names = [...counts.keys()].sort();
    el.annotators.dataset.count = String(names.length);
    el.annotators.textContent = names.length ? `Labels by annotator: ${names.map((a) => `${a} ${counts.get(a)}`).join(', ')}` : 'No labels yet.';
  }

  el.agreementRun.addEventListener(
    'click',
    guard(async () => {
      const out = el.agreementOut;
      const lines = [];
      for (const { name, level, table } of agreementTables(current.task, await store.labels(current.id), current.attributes)) {
        const answer = await agreement(client, table, level);
        if (!answer.available) {
          out.dataset.state = 'missing';
          out.textContent = AGREEMENT_MISSING;
          return;
        }
        lines.push(describeReport(name, answer.result));
      }
      out.dataset.state = 'done';
      out.textContent = lines.join('\n');
    }),
  );

  // -------------------------------------------------------------------------------------------------------------
  // Annotator and keys

  el.annotator.addEventListener(
    'change',
    guard(async () => {
      localStorage.setItem(ANNOTATOR, annotator());
      await labeler.open(current, annotator());
      await countOthers();
    }),
  );

  document.addEventListener('keydown', (event) => {
    if (!isShown()) return;
    if (event.key === 'Escape' && isTyping(event.target)) {
      event.target.blur();
      return;
    }
    if (isTyping(event.target)) return;
    if (labeler.onKey(event)) event.preventDefault();
  });
  // a clicked button keeps focus, and Space or Enter on it would press it again on top of the key's own action
  $('labeler').addEventListener('click', (event) => event.target.closest('button')?.blur());

  await refreshProjects(localStorage.getItem(SELECTED));
  $('label-view').dataset.ready = 'true';
}
