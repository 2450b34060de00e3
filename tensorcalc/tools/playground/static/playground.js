// The playground page: every action is a POST to the server with the page's token (from
// its own URL); the math is rendered by the KaTeX that ships with tensorcalc.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const $ = (id) => document.getElementById(id);
let examples = {};
let parseCount = 0;
let parseTimer = null;

async function api(action, body) {
  const response = await fetch("/api/" + action, {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-Tensorcalc-Token": token},
    body: JSON.stringify(body),
  });
  try {
    return await response.json();
  } catch (err) {
    return {error: {message: `the server answered ${response.status}`, line: 0, column: 0}};
  }
}

function request() {
  return {program: $("program").value, wrt: $("wrt").value, kind: $("kind").value};
}

// A syntax or program error under the editor: the API's message, whose first line names
// the line and column (a syntax error's next lines show the line with a caret).
function showError(error) {
  const box = $("error");
  box.hidden = !error;
  box.textContent = error ? error.message : "";
  box.dataset.line = error ? error.line : "";
  box.dataset.column = error ? error.column : "";
  $("program").classList.toggle("has-error", Boolean(error));
}

// A click on the error puts the cursor at its line and column in the editor.
function goToError() {
  const line = Number($("error").dataset.line);
  const column = Number($("error").dataset.column);
  if (!line) {
    return;
  }
  const before = $("program").value.split("\n").slice(0, line - 1);
  const offset = before.reduce((n, text) => n + text.length + 1, 0) + Math.max(column - 1, 0);
  $("program").focus();
  $("program").setSelectionRange(offset, offset + 1);
}

function showWarnings(notes) {
  $("warnings").textContent = (notes || []).map((n) => "warning: " + n).join("\n");
}

async function parseNow() {
  const count = ++parseCount;
  const answer = await api("parse", {program: $("program").value});
  if (count !== parseCount) {
    return; // a later keystroke's answer will come
  }
  showError(answer.error);
  if (answer.error) {
    return;
  }
  showWarnings(answer.warnings);
  const names = Object.keys(answer.inputs);
  $("inputs").replaceChildren(...names.map((n) => new Option(n, n)));
  const chosen = $("wrt").value.split("[")[0].trim();
  if (names.length && !names.includes(chosen)) {
    $("wrt").value = names[0];
  }
}

function parseSoon() {
  clearTimeout(parseTimer);
  parseTimer = setTimeout(parseNow, 250);
}

function nextFrame() {
  return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}

async function derive() {
  const started = performance.now();
  const answer = await api("derive", request());
  if (answer.error) {
    showError(answer.error);
    return;
  }
  showError(null);
  showWarnings(answer.warnings);
  katex.render(answer.latex, $("result-math"), {displayMode: true, throwOnError: false});
  $("result-text").textContent = answer.text;
  $("explain").textContent = answer.explain;
  $("diagram").innerHTML = answer.diagram; // drawn by tensorcalc, every text escaped
  $("python").textContent = answer.python;
  $("copied").textContent = "";
  remember();
  await nextFrame();
  const ms = performance.now() - started;
  $("timing").textContent = `${ms.toFixed(0)} ms`;
  document.body.dataset.renderMs = ms.toFixed(1);
}

async function copyPython() {
  const text = $("python").textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch (err) {
    const area = document.createElement("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  $("copied").textContent = `copied ${text.split("\n").length} lines`;
}

function base64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result.split(",", 2)[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function check() {
  const out = $("check-result");
  out.dataset.verdict = "";
  out.textContent = "checking...";
  const arrays = {};
  for (const file of $("files").files) {
    arrays[file.name.replace(/\.npy$/, "")] = await base64(file);
  }
  const answer = await api("check", {
    ...request(), sizes: $("sizes").value, seed: Number($("seed").value) || 0, arrays,
  });
  if (answer.error) {
    out.dataset.verdict = "error";
    out.textContent = answer.error.message;
    return;
  }
  out.dataset.verdict = answer.verdict;
  out.textContent = `${answer.verdict}: largest error ${answer.largest_error.toExponential(2)}\n` +
    answer.summary;
}

// The program, what it is derived by and how, in the page's address (after #): the
// address is a link to this program.
function remember() {
  const state = new URLSearchParams({...request(), sizes: $("sizes").value});
  history.replaceState(null, "", "#" + state.toString());
  $("share").href = location.href;
}

function load(state) {
  $("program").value = state.program || "";
  $("wrt").value = state.wrt || "";
  $("kind").value = state.kind || "derivative";
  $("sizes").value = state.sizes || "";
}

async function start() {
  const response = await fetch("/api/examples", {headers: {"X-Tensorcalc-Token": token}});
  examples = await response.json();
  $("examples").replaceChildren(...Object.keys(examples).map((n) => new Option(n, n)));
  const shared = new URLSearchParams(location.hash.slice(1));
  load(shared.has("program") ? Object.fromEntries(shared) : Object.values(examples)[0]);
  $("examples").addEventListener("change", () => {
    load(examples[$("examples").value]);
    derive();
  });
  $("program").addEventListener("input", parseSoon);
  $("program").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      derive();
    }
  });
  $("error").addEventListener("click", goToError);
  $("run").addEventListener("click", derive);
  $("copy").addEventListener("click", copyPython);
  $("check").addEventListener("click", check);
  await parseNow();
  await derive();
  document.body.dataset.ready = "true";
}

start();
