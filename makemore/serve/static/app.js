// The page: lists the runs, samples from one or two side by side, and colours a scored word's letters.
"use strict";

const $ = (id) => document.getElementById(id);
let runs = [];

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== "") node.textContent = text;
  return node;
}

function fixed(value, digits = 4) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body)};
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({error: `the server answered ${response.status}`}));
  if (!response.ok) throw new Error(data.error || `the server answered ${response.status}`);
  return data;
}

function showError(id, error) {
  const node = $(id);
  node.hidden = !error;
  node.textContent = error ? error.message : "";
}

function fillRuns(data) {
  runs = data.runs;
  for (const select of [$("run-a"), $("run-b")]) {
    for (const run of runs) select.append(el("option", {value: run.name}, run.name));
  }
  $("run-a").value = data.default;
  const first = runs.find((r) => r.name === data.default);
  $("temperature").value = first.sample.temperature;
  $("temperature-value").textContent = Number(first.sample.temperature).toFixed(2);
  const byDev = [...runs].sort((a, b) => (a.dev_nll ?? Infinity) - (b.dev_nll ?? Infinity));
  const body = $("runs-table").querySelector("tbody");
  for (const run of byDev) {
    const row = el("tr");
    row.append(el("td", {}, run.name), el("td", {}, run.type), el("td", {class: "num"}, run.params.toLocaleString("en")),
      el("td", {class: "num"}, fixed(run.dev_nll)), el("td", {class: "num"}, fixed(run.test_nll)));
    body.append(row);
  }
  fillLabels();
}

function fillLabels() {
  const run = runs.find((r) => r.name === $("run-a").value);
  const labels = run ? run.labels : [];
  const select = $("label");
  select.replaceChildren(el("option", {value: ""}, "(any)"), ...labels.map((l) => el("option", {value: l}, l)));
  $("label-field").hidden = labels.length === 0;
}

function intOrNull(id) {
  const text = $(id).value.trim();
  return text === "" ? null : Number.parseInt(text, 10);
}

function sampleRequest(run) {
  const body = {run, n: intOrNull("n") ?? 10};
  if ($("prefix").value) body.prefix = $("prefix").value;
  if ($("most-likely").checked) body.most_likely = true;
  else body.temperature = Number($("temperature").value);
  const topP = $("top-p").value.trim();
  if (topP !== "" && !body.most_likely) body.top_p = Number(topP);
  for (const [id, key] of [["min-length", "min_length"], ["max-length", "max_length"], ["seed", "seed"]]) {
    const value = intOrNull(id);
    if (value !== null) body[key] = value;
  }
  if ($("novel").checked) body.novel = true;
  if ($("unique").checked && !body.most_likely) body.unique = true;
  const label = $("label").value;  // chosen among the first run's labels: sent to each run that has it
  if (label && runs.find((r) => r.name === run).labels.includes(label)) body.label = label;
  return body;
}

function wordList(result) {
  const list = el("ul", {class: "words"});
  for (const w of result.words) {
    const item = el("li");
    item.append(el("span", {class: "word"}, w.word || "(empty)"),
      el("span", {class: "nll", title: "nats per character"}, `nll ${fixed(w.nll, 3)}`),
      el("span", {class: `tag ${w.origin.replace("/", "-")}`}, w.origin));
    if (w.label) item.append(el("span", {class: "tag"}, w.label));
    list.append(item);
  }
  return list;
}

function statsLine(result) {
  const s = result.stats;
  if (s.drawn === undefined) return `found ${s.kept} of ${s.requested}, most likely first (exact search)`;
  const rejected = Object.values(s.rejected).reduce((a, b) => a + b, 0);
  return `drew ${s.drawn}: ${s.new} new, ${s.train} in train, ${s["dev/test"]} in dev/test; kept ${s.kept}` +
    (rejected ? `, rejected ${rejected}` : "");
}

function column(result) {
  const box = el("div", {class: "column"});
  box.append(el("h3", {}, result.run), wordList(result), el("p", {class: "stats"}, statsLine(result)));
  if (!result.complete && result.message) box.append(el("p", {class: "error"}, result.message));
  return box;
}

async function generate(event) {
  event.preventDefault();
  const names = [$("run-a").value, $("run-b").value].filter((name, i) => name && (i === 0 || name !== $("run-a").value));
  $("generate-button").disabled = true;
  try {
    const results = await Promise.all(names.map((name) => api("/api/sample", sampleRequest(name))));
    $("samples").replaceChildren(...results.map(column));
    showError("sample-error", null);
  } catch (error) {
    showError("sample-error", error);
  } finally {
    $("generate-button").disabled = false;
  }
}

// green for an expected letter, through yellow, to red for a surprising one: full red at p = 1 / V^2
function colour(p, vocabSize) {
  const level = Math.min(1, -Math.log(Math.max(p, 1e-12)) / (2 * Math.log(vocabSize)));
  return `hsl(${Math.round(120 * (1 - level))}, 70%, 72%)`;
}

async function score(event) {
  event.preventDefault();
  const run = $("run-a").value;
  $("score-button").disabled = true;
  try {
    const result = await api("/api/score", {run, words: [$("word").value.trim()]});
    const w = result.words[0];
    const vocabSize = runs.find((r) => r.name === run).vocab_size;
    const letters = el("div", {class: "letters"});
    for (const c of w.chars) {
      const cell = el("span", {class: "letter", style: `background: ${colour(c.p, vocabSize)}`,
        title: `${fixed(c.bits, 2)} bits`});
      cell.append(el("span", {class: "char"}, c.char === null ? "⏎" : c.char), el("span", {class: "p"}, fixed(c.p, 3)));
      letters.append(cell);
    }
    const summary = el("p", {class: "summary"}, `${w.word} under ${run}: nll ${fixed(w.nll)} nats/char, ` +
      `${fixed(w.bpc, 3)} bits/char, perplexity ${fixed(w.perplexity, 2)}, ${w.origin}`);
    $("scored").replaceChildren(letters, summary);
    showError("score-error", null);
  } catch (error) {
    showError("score-error", error);
  } finally {
    $("score-button").disabled = false;
  }
}

function start() {
  $("temperature").addEventListener("input", () => {
    $("temperature-value").textContent = Number($("temperature").value).toFixed(2);
  });
  $("run-a").addEventListener("change", fillLabels);
  $("sample-form").addEventListener("submit", generate);
  $("score-form").addEventListener("submit", score);
  api("/api/runs").then(fillRuns).catch((error) => showError("sample-error", error));
}

document.addEventListener("DOMContentLoaded", start);
