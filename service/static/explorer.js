// The ganserve latent explorer: plain JavaScript, no dependencies, no build step.
//
// Everything it draws comes from the public image API by GET (/models, /generate,
// /conditional, /perturb), fetched with the API key as a Bearer header when one is
// set, and shown from the response's bytes (a blob: URL), so the image on screen is
// byte for byte what the same GET returns. The state lives in the page's query
// string: a link reproduces the view.

const PAD = 2; // the service's default padding between cells, in pixels
const SLIDER = { min: -3, max: 3, step: 0.1 };
const DEBOUNCE_MS = 25; // a slider waits this long for the next move before it asks
const KEY_STORAGE = "ganserve-api-key";
const VIEWS = ["sliders", "experiment", "grid", "classes"];
const MODES = ["set", "add", "scale", "noise"];
const REPORT_DIMS = [5, 20, 40, 60, 80]; // what /perturb uses in mode set without dims
const MAX_COLUMN_LABELS = 32;
const PRESETS = [
  { text: "15 × 8 grid", title: "dimensions 5, 20, 40, 60, 80 set to −3, 0 and 3, 8 samples",
    mode: "set", dims: REPORT_DIMS, values: [-3, 0, 3], n: 8 },
  { text: "scale ×0.5 / ×2", title: "the whole vector scaled by 0.5, 1 and 2",
    mode: "scale", dims: [], values: [0.5, 1, 2] },
  { text: "shift ±3", title: "every dimension shifted by −3, 0 and +3",
    mode: "add", dims: [], values: [-3, 0, 3] },
  { text: "noise", title: "seeded Gaussian noise of scale 0, 0.5, 1 and 2 added",
    mode: "noise", dims: [], values: [0, 0.5, 1, 2] },
];
const DEFAULTS = {
  model: null, view: "sliders", seed: "0", n: 8, columns: 8, scale: 3,
  classes: null, label: 0,
  smode: "set", sliders: [{ dim: 5, value: -3 }, { dim: 20, value: 0 }, { dim: 40, value: 3 }],
  mode: "set", dims: REPORT_DIMS, values: [-3, 0, 3],
};

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
};

// -- state <-> query string ---------------------------------------------------------

function parseInts(text) {
  const parts = String(text).split(",").map((s) => s.trim()).filter(Boolean);
  return parts.every((s) => /^\d+$/.test(s)) ? parts.map(Number) : null;
}

function parseNumbers(text) {
  const parts = String(text).split(",").map((s) => s.trim()).filter(Boolean);
  const numbers = parts.map(Number);
  return parts.length && numbers.every(Number.isFinite) ? numbers : null;
}

function round(value) {
  return Math.round(value * 100) / 100;
}

function readState(search) {
  const q = new URLSearchParams(search);
  const s = structuredClone(DEFAULTS);
  const int = (name, fallback) =>
    /^\d+$/.test(q.get(name) ?? "") ? Number(q.get(name)) : fallback;
  s.model = q.get("model") || null;
  if (VIEWS.includes(q.get("view"))) s.view = q.get("view");
  if (/^\d+$/.test(q.get("seed") ?? "")) s.seed = q.get("seed");
  s.n = int("n", s.n);
  s.columns = int("columns", s.columns);
  s.scale = Math.min(Math.max(int("scale", s.scale), 1), 4);
  if (q.has("classes")) s.classes = parseInts(q.get("classes")) ?? null;
  s.label = int("label", s.label);
  if (q.get("smode") === "add") s.smode = "add";
  if (q.has("sliders")) {
    s.sliders = q.get("sliders").split(",").filter(Boolean).map((pair) => {
      const [dim, value] = pair.split(":");
      return { dim: Number(dim), value: Number(value ?? 0) };
    }).filter((x) => Number.isInteger(x.dim) && x.dim >= 0 && Number.isFinite(x.value))
      .map((x) => ({ dim: x.dim, value: round(Math.min(Math.max(x.value, SLIDER.min), SLIDER.max)) }));
  }
  if (MODES.includes(q.get("mode"))) s.mode = q.get("mode");
  if (q.has("dims")) s.dims = parseInts(q.get("dims")) ?? s.dims;
  if (q.has("values")) s.values = parseNumbers(q.get("values")) ?? s.values;
  return s;
}

function writeState() {
  const s = state;
  const q = new URLSearchParams();
  if (s.model) q.set("model", s.model);
  q.set("view", s.view);
  q.set("seed", s.seed);
  q.set("n", s.n);
  if (s.view === "grid") q.set("columns", s.columns);
  q.set("scale", s.scale);
  const model = currentModel();
  if (s.view === "classes" && s.classes) q.set("classes", s.classes.join(","));
  if ((s.view === "sliders" || s.view === "experiment") && model?.conditional) q.set("label", s.label);
  if (s.view === "sliders") {
    q.set("smode", s.smode);
    q.set("sliders", s.sliders.map((x) => `${x.dim}:${x.value}`).join(","));
  }
  if (s.view === "experiment") {
    q.set("mode", s.mode);
    q.set("dims", s.dims.join(","));
    q.set("values", s.values.join(","));
  }
  const search = `?${q}`.replaceAll("%2C", ",").replaceAll("%3A", ":");
  if (search !== location.search) history.replaceState(null, "", search);
}

// -- talking to the service ---------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function formatDetail(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((e) => {
      const where = (e.loc ?? []).filter((part) => part !== "query" && part !== "body").join(".");
      return where ? `${where}: ${e.msg}` : e.msg;
    }).join("; ");
  }
  return JSON.stringify(detail);
}

async function describe(response) {
  let detail = response.statusText;
  try {
    detail = formatDetail((await response.json()).detail);
  } catch {
    // not JSON: keep the status text
  }
  const code = response.status;
  if (code === 401) {
    return apiKey
      ? `The service refused the API key (401): ${detail}. Check the key under “API key”.`
      : `This service needs an API key (401): enter it under “API key” and press “Use key”.`;
  }
  if (code === 503) {
    const after = response.headers.get("Retry-After");
    return `The service is busy (503): ${detail}.${after ? ` Try again in ${after} s.` : ""}`;
  }
  if (code >= 500) return `The service failed (${code}): ${detail}.`;
  return `The service refused the request (${code}): ${detail}.`;
}

async function api(relative, signal) {
  const headers = apiKey ? { Authorization: `Bearer ${apiKey}` } : {};
  let response;
  try {
    response = await fetch(new URL(relative, document.baseURI), { headers, signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, `Could not reach the service: ${error.message}.`);
  }
  if (!response.ok) throw new ApiError(response.status, await describe(response));
  return response;
}

// -- what each view asks for ----------------------------------------------------------

function currentModel() {
  return models.find((m) => m.name === state.model) ?? null;
}

function labelParam(model, index) {
  const name = model.class_names?.[index];
  return name && !name.includes(",") ? name : String(index);
}

function className(model, index) {
  return model.class_names?.[index] ?? `class ${index}`;
}

function effectiveDims() {
  return state.dims.length ? state.dims : state.mode === "set" ? REPORT_DIMS : [];
}

function valueText(v) {
  return v < 0 ? `−${-v}` : `${v}`;
}

function rowLabel(mode, dim, value) {
  const z = dim === null ? "z" : `z[${dim}]`;
  const v = valueText(value);
  if (mode === "set") return `${z} = ${v}`;
  if (mode === "add") return value < 0 ? `${z} − ${-value}` : `${z} + ${v}`;
  if (mode === "scale") return `${z} × ${v}`;
  return `${z} + ${v}·ε`;
}

// A panel: one GET request and how to label its grid.
function panelsFor(model) {
  const s = state;
  const common = [["model", model.name], ["seed", s.seed]];
  const samples = Array.from({ length: s.n }, (_, j) => String(j));
  const withLabel = model.conditional ? [["label", labelParam(model, s.label)]] : [];
  const labelText = model.conditional ? `, class ${className(model, s.label)}` : "";
  if (s.view === "grid") {
    const columns = Math.min(s.columns, s.n);
    const rows = Math.ceil(s.n / columns);
    return [{
      id: "grid", path: "generate", rows, columns,
      params: [...common, ["n", s.n], ["columns", s.columns], ["scale", s.scale]],
      rowLabels: Array.from({ length: rows }, (_, r) => `#${r * columns}`),
      columnLabels: Array.from({ length: columns }, (_, c) => `+${c}`), corner: "image",
      alt: `${s.n} images from ${model.name}, seed ${s.seed}, ${rows} rows of ${columns}`,
      sdk: ["generate", { model: model.name, n: s.n, seed: s.seed, columns: s.columns, scale: s.scale }],
    }];
  }
  if (s.view === "classes") {
    const classes = s.classes ?? Array.from({ length: model.num_classes }, (_, i) => i);
    const labels = classes.map((i) => labelParam(model, i));
    return [{
      id: "classes", path: "conditional", rows: classes.length, columns: s.n,
      params: [...common, ["labels", labels.join(",")], ["n", s.n], ["scale", s.scale]],
      rowLabels: classes.map((i) => className(model, i)), columnLabels: samples,
      alt: `${model.name}, seed ${s.seed}: one row of ${s.n} per class: ` +
        classes.map((i) => className(model, i)).join(", "),
      sdk: ["conditional", { labels, model: model.name, n: s.n, seed: s.seed, scale: s.scale }],
      empty: classes.length ? null : "Choose at least one class.",
    }];
  }
  if (s.view === "experiment") {
    const dims = effectiveDims();
    const rows = (dims.length ? dims : [null]).flatMap((d) => s.values.map((v) => rowLabel(s.mode, d, v)));
    const params = [...common, ["n", s.n], ["mode", s.mode]];
    if (dims.length) params.push(["dims", dims.join(",")]);
    params.push(["values", s.values.join(",")], ...withLabel, ["scale", s.scale]);
    const sdk = { model: model.name, seed: s.seed, n: s.n, mode: s.mode };
    if (dims.length) sdk.dims = dims;
    sdk.values = s.values;
    if (model.conditional) sdk.label = labelParam(model, s.label);
    sdk.scale = s.scale;
    return [{
      id: "experiment", path: "perturb", rows: rows.length, columns: s.n, params,
      rowLabels: rows, columnLabels: samples,
      alt: `${model.name}, seed ${s.seed}${labelText}: ${rows.length} rows (${rows.join("; ")}) of ${s.n} samples`,
      sdk: ["perturb", sdk],
    }];
  }
  // sliders: the unchanged samples, then one row per slider
  const base = model.conditional
    ? {
      path: "conditional",
      params: [...common, ["labels", labelParam(model, s.label)], ["n", s.n], ["scale", s.scale]],
      sdk: ["conditional", { labels: [labelParam(model, s.label)], model: model.name, n: s.n, seed: s.seed, scale: s.scale }],
    }
    : {
      path: "generate",
      params: [...common, ["n", s.n], ["columns", s.n], ["scale", s.scale]],
      sdk: ["generate", { model: model.name, n: s.n, seed: s.seed, columns: s.n, scale: s.scale }],
    };
  const panels = [{
    id: "base", rows: 1, columns: s.n, ...base,
    rowLabels: null, columnLabels: samples, caption: "unchanged",
    alt: `${s.n} samples from ${model.name}, seed ${s.seed}${labelText}, unchanged`,
  }];
  s.sliders.forEach((slider, i) => {
    panels.push({
      id: `slider-${i}`, slider: i, path: "perturb", rows: 1, columns: s.n,
      params: [...common, ["n", s.n], ["mode", s.smode], ["dims", slider.dim],
        ["values", slider.value], ...withLabel, ["scale", s.scale]],
      rowLabels: [rowLabel(s.smode, slider.dim, slider.value)], columnLabels: null,
      alt: `${s.n} samples from ${model.name}, seed ${s.seed}${labelText}, with ` +
        rowLabel(s.smode, slider.dim, slider.value),
      sdk: ["perturb", { model: model.name, seed: s.seed, n: s.n, dims: [slider.dim],
        values: [slider.value], mode: s.smode, ...(model.conditional ? { label: labelParam(model, s.label) } : {}), scale: s.scale }],
    });
  });
  return panels;
}

function requestOf(panel) {
  const query = panel.params.map(([k, v]) => `${k}=${encodeURIComponent(v).replaceAll("%2C", ",")}`);
  return `${panel.path}?${query.join("&")}`;
}

// -- drawing ----------------------------------------------------------------------------

function gridSize(model, panel) {
  const [h, w] = model.image_shape;
  const cell = { h: h * state.scale, w: w * state.scale };
  return {
    cell,
    width: panel.columns * (cell.w + PAD) + PAD,
    height: panel.rows * (cell.h + PAD) + PAD,
  };
}

function createPanel(panel) {
  const node = el("section", { className: "panel" });
  node.dataset.panel = panel.id;
  const img = el("img", { decoding: "async" });
  img.hidden = true;
  const frame = el("div", { className: "frame" }, img);
  const figure = el("figure", { className: "grid" },
    el("div", { className: "corner" }),
    el("div", { className: "column-labels" }),
    el("div", { className: "row-labels" }),
    frame);
  for (const box of figure.querySelectorAll("div")) box.setAttribute("aria-hidden", "true");
  const error = el("p", { className: "panel-error" });
  error.setAttribute("role", "alert");
  error.hidden = true;
  node.append(figure, error);
  if (panel.caption) node.prepend(el("p", { className: "caption", textContent: panel.caption }));
  node.addEventListener("pointerdown", () => makeCurrent(panel.id));
  node.addEventListener("focusin", () => makeCurrent(panel.id));
  const view = { node, figure, frame, img, error, seq: 0, inflight: null, dirty: false, t0: null };
  if (panel.slider !== undefined) node.prepend(createSliderControls(panel.slider));
  return view;
}

function createSliderControls(index) {
  const slider = state.sliders[index];
  const id = `slider-${index}`;
  const dim = el("input", { type: "number", id: `${id}-dim`, min: 0, step: 1, value: slider.dim, className: "dim" });
  dim.inputMode = "numeric";
  const range = el("input", { type: "range", id: `${id}-value`, min: SLIDER.min, max: SLIDER.max, step: SLIDER.step, value: slider.value });
  const output = el("output", { htmlFor: range.id, className: "value" }, valueText(slider.value));
  const remove = el("button", { type: "button", className: "remove", textContent: "Remove" });
  const rangeLabel = el("label", { htmlFor: range.id, className: "range-label" });
  const setLabels = () => {
    const d = state.sliders[index].dim;
    rangeLabel.textContent = `value of z[${d}]`;
    remove.setAttribute("aria-label", `Remove the slider of dimension ${d}`);
    range.setAttribute("aria-valuetext", rowLabel(state.smode, d, state.sliders[index].value));
  };
  setLabels();
  dim.addEventListener("change", () => {
    const value = Number(dim.value);
    if (!Number.isInteger(value) || value < 0) {
      dim.setAttribute("aria-invalid", "true");
      return;
    }
    dim.removeAttribute("aria-invalid");
    state.sliders[index].dim = value;
    setLabels();
    sliderMoved(index);
  });
  range.addEventListener("input", () => {
    state.sliders[index].value = round(Number(range.value));
    output.textContent = valueText(state.sliders[index].value);
    setLabels();
    sliderMoved(index);
  });
  remove.addEventListener("click", () => {
    state.sliders.splice(index, 1);
    render();
  });
  return el("div", { className: "slider" },
    el("label", { htmlFor: dim.id, textContent: "dimension", className: "dim-label" }), dim,
    rangeLabel, range, output, remove);
}

function labelsInto(container, labels, positions, axis) {
  container.replaceChildren(...labels.map((text, i) => {
    const label = el("span", { textContent: text });
    label.style[axis] = `${positions[i]}%`;
    return label;
  }));
}

// Lay out the figure for a panel: reserved size, row and column labels, alt text.
function applyPanel(view, panel, model) {
  const { cell, width, height } = gridSize(model, panel);
  view.img.width = width;
  view.img.height = height;
  view.frame.style.aspectRatio = `${width} / ${height}`;
  view.frame.style.maxWidth = `${width}px`;
  view.figure.querySelector(".column-labels").style.maxWidth = `${width}px`;
  view.img.alt = panel.alt;
  const rowsAt = Array.from({ length: panel.rows }, (_, r) => ((PAD + r * (cell.h + PAD) + cell.h / 2) / height) * 100);
  const columnsAt = Array.from({ length: panel.columns }, (_, c) => ((PAD + c * (cell.w + PAD) + cell.w / 2) / width) * 100);
  const rowLabels = panel.rowLabels ?? (panel.caption ? [panel.caption] : []);
  const [rowBox, columnBox] = [view.figure.querySelector(".row-labels"), view.figure.querySelector(".column-labels")];
  labelsInto(rowBox, rowLabels, rowsAt, "top");
  const columnLabels = panel.columnLabels && panel.columns <= MAX_COLUMN_LABELS ? panel.columnLabels : [];
  labelsInto(columnBox, columnLabels, columnsAt, "left");
  columnBox.hidden = !columnLabels.length;
  view.figure.querySelector(".corner").textContent = columnLabels.length ? panel.corner ?? "sample" : "";
}

async function draw(id) {
  const view = views.get(id);
  const model = currentModel();
  const panel = panels.find((p) => p.id === id);
  if (!view || !model || !panel) return;
  const seq = ++view.seq;
  if (panel.empty) {
    showPanelError(view, panel.empty);
    return;
  }
  const request = requestOf(panel);
  view.node.setAttribute("aria-busy", "true");
  try {
    const response = await api(request);
    const blob = await response.blob();
    if (seq !== view.seq) return;
    // The old image stays on screen until the new one is decoded (an img's pending request).
    const url = URL.createObjectURL(blob);
    const old = view.img.src;
    applyPanel(view, panel, model);
    view.img.src = url;
    await view.img.decode();
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    view.img.hidden = false;
    view.figure.hidden = false;
    view.error.hidden = true;
    view.frame.classList.add("loaded");
    view.img.dataset.src = request;
    view.shown = { panel, request, url, seed: response.headers.get("X-Seed") };
    if (view.t0 !== null) {
      view.img.dataset.drawnMs = (performance.now() - view.t0).toFixed(1);
      view.t0 = null;
    }
    if (currentId === id) updateActions();
  } catch (error) {
    if (seq !== view.seq || error.name === "AbortError") return;
    showPanelError(view, error instanceof ApiError ? error.message : `The image could not be shown: ${error.message}`);
  } finally {
    if (seq === view.seq) view.node.removeAttribute("aria-busy");
  }
}

function showPanelError(view, message) {
  view.figure.hidden = true;
  view.img.hidden = true;
  view.img.removeAttribute("data-src");
  view.frame.classList.remove("loaded");
  view.shown = null;
  view.error.textContent = message;
  view.error.hidden = false;
  view.node.removeAttribute("aria-busy");
  if (currentId === view.node.dataset.panel) updateActions();
}

// At most one request per panel in flight: a move during one is sent when it returns.
function schedule(id) {
  const view = views.get(id);
  clearTimeout(view.timer);
  view.timer = setTimeout(() => {
    panels = panelsFor(currentModel());
    writeState(); // here rather than on every move: browsers throttle history updates
    run(id);
  }, DEBOUNCE_MS);
}

function run(id) {
  const view = views.get(id);
  if (!view) return;
  if (view.inflight) {
    view.dirty = true;
    return;
  }
  view.inflight = draw(id).finally(() => {
    view.inflight = null;
    if (view.dirty) {
      view.dirty = false;
      run(id);
    }
  });
}

function sliderMoved(index) {
  const id = `slider-${index}`;
  const view = views.get(id);
  if (view.t0 === null) view.t0 = performance.now();
  makeCurrent(id);
  schedule(id);
}

// -- the current image: download and reproduce -----------------------------------------

function makeCurrent(id) {
  if (currentId === id) return;
  currentId = id;
  for (const [key, view] of views) view.node.classList.toggle("current", key === id);
  updateActions();
}

function pyValue(value) {
  if (Array.isArray(value)) return `[${value.map(pyValue).join(", ")}]`;
  if (typeof value === "number") return String(value);
  if (typeof value === "string" && /^\d+$/.test(value)) return value;
  return JSON.stringify(value);
}

function shellQuote(text) {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

function updateActions() {
  const view = views.get(currentId);
  const shown = view?.shown;
  $("actions").hidden = !shown;
  if (!shown) return;
  const { panel, request, url } = shown;
  const name = `${[state.model, panel.path, `seed${state.seed}`, panel.slider !== undefined ? `dim${state.sliders[panel.slider]?.dim}` : ""].filter(Boolean).join("-")}.png`;
  $("current-name").textContent = panel.caption ?? (panel.slider !== undefined ? rowLabel(state.smode, state.sliders[panel.slider].dim, state.sliders[panel.slider].value) : "");
  const download = $("download");
  download.href = url;
  download.download = name;
  const absolute = new URL(request, document.baseURI).href;
  const auth = apiKey ? ` -H "Authorization: Bearer $GANSERVE_API_KEY"` : "";
  $("curl").textContent = `curl -s${auth} ${shellQuote(absolute)} -o ${name}`;
  const [method, fields] = panel.sdk;
  const args = Object.entries(fields).map(([k, v], i) =>
    method === "conditional" && i === 0 ? pyValue(v) : `${k}=${pyValue(v)}`);
  const base = new URL(".", document.baseURI).href.replace(/\/$/, "");
  $("sdk").textContent = [
    "from ganserve_client import Client",
    "",
    `with Client(${JSON.stringify(base)}) as client:  # the API key from GANSERVE_API_KEY`,
    `    client.${method}(${args.join(", ")}).save(${JSON.stringify(name)})`,
  ].join("\n");
}

async function copy(text) {
  const status = $("copy-status");
  try {
    await navigator.clipboard.writeText(text);
    status.textContent = "Copied.";
  } catch {
    status.textContent = "Select the text below and copy it.";
  }
  setTimeout(() => { status.textContent = ""; }, 3000);
}

// -- controls ---------------------------------------------------------------------------

function fieldError(id, message) {
  const input = $(id);
  const error = $(`${id}-error`);
  if (message) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
  error.textContent = message ?? "";
  error.hidden = !message;
}

function showMessage(text) {
  $("message").textContent = text ?? "";
  $("message").hidden = !text;
}

function syncControls() {
  const s = state;
  const model = currentModel();
  $("model").value = s.model ?? "";
  for (const radio of document.querySelectorAll("input[name=view]")) {
    radio.checked = radio.value === s.view;
    if (radio.value === "classes") radio.disabled = !model?.conditional;
  }
  for (const radio of document.querySelectorAll("input[name=smode]")) radio.checked = radio.value === s.smode;
  $("seed").value = s.seed;
  $("n").value = s.n;
  $("n-label").textContent = s.view === "grid" ? "Images" : s.view === "classes" ? "Per class" : "Samples";
  $("columns").value = s.columns;
  $("scale").value = String(s.scale);
  $("mode").value = s.mode;
  $("dims").value = s.dims.join(", ");
  $("values").value = s.values.join(", ");
  $("model-info").textContent = model ? describeModel(model) : "";
  if (model && model.name !== syncedModel) { // rebuilt only here, so focus stays put
    syncedModel = model.name;
    $("new-dim").max = model.latent_dim - 1;
    $("label").replaceChildren(...Array.from({ length: model.num_classes }, (_, i) =>
      el("option", { value: i, textContent: className(model, i) })));
    $("classes").replaceChildren(...Array.from({ length: model.num_classes }, (_, i) => {
      const box = el("input", { type: "checkbox", value: i, name: "class" });
      return el("label", {}, box, ` ${className(model, i)}`);
    }));
  }
  if (model) {
    $("label").value = String(s.label);
    const chosen = new Set(s.classes ?? Array.from({ length: model.num_classes }, (_, i) => i));
    for (const box of $("classes").querySelectorAll("input")) box.checked = chosen.has(Number(box.value));
  }
  for (const node of document.querySelectorAll("[data-views]")) {
    const shown = node.dataset.views.split(" ").includes(s.view) &&
      (!node.hasAttribute("data-conditional") || Boolean(model?.conditional));
    node.hidden = !shown;
  }
}

function describeModel(model) {
  const card = model.card ?? {};
  const fid = card.quality?.fid;
  const [h, w, c] = model.image_shape;
  const parts = [
    card.dataset,
    typeof fid === "number" ? `FID ${fid.toFixed(2)}` : "no FID measured",
    [card.architecture, card.loss, card.epochs ? `${card.epochs} epochs` : null].filter(Boolean).join(", "),
    `${h}×${w}×${c}`,
    `latent ${model.latent_dim}`,
    model.conditional ? `${model.num_classes} classes` : null,
    model.provider,
  ];
  return parts.filter(Boolean).join(" · ");
}

function fillModels(response) {
  const byDataset = new Map();
  const fid = (m) => m.card?.quality?.fid ?? Infinity;
  for (const m of [...models].sort((a, b) => fid(a) - fid(b) || a.name.localeCompare(b.name))) {
    const dataset = m.card?.dataset ?? "other";
    if (!byDataset.has(dataset)) byDataset.set(dataset, []);
    byDataset.get(dataset).push(m);
  }
  const groups = [...byDataset].map(([dataset, list]) => el("optgroup", { label: dataset },
    ...list.map((m) => el("option", {
      value: m.name,
      textContent: `${m.name}${Number.isFinite(fid(m)) ? ` (FID ${fid(m).toFixed(1)})` : ""}${m.conditional ? " · conditional" : ""}`,
    }))));
  $("model").replaceChildren(...groups);
  $("model").disabled = false;
  if (state.model && !models.some((m) => m.name === state.model)) {
    showMessage(`The model “${state.model}” is not served here; showing ${response.default_model ?? models[0].name}.`);
    state.model = null;
  }
  state.model ??= response.default_model ?? models[0]?.name ?? null;
}

async function loadModels() {
  showMessage(null);
  try {
    const response = await (await api("models")).json();
    models = response.models;
    if (!models.length) throw new ApiError(0, "The service serves no model.");
    fillModels(response);
  } catch (error) {
    models = [];
    $("model").replaceChildren(el("option", { textContent: "no models" }));
    $("model").disabled = true;
    showMessage(error.message);
    if (error.status === 401) $("key-box").open = true;
    clearPanels();
    return;
  }
  render();
}

function clearPanels() {
  for (const view of views.values()) {
    if (view.img.src.startsWith("blob:")) URL.revokeObjectURL(view.img.src);
    view.node.remove();
  }
  views.clear();
  panels = [];
  currentId = null;
  updateActions();
}

// One width for every panel's row labels, so the images line up and do not move as a
// slider's label changes.
function labelWidth(list) {
  const texts = list.flatMap((p) => p.rowLabels ?? (p.caption ? [p.caption] : []));
  const sliders = list.filter((p) => p.slider !== undefined)
    .map((p) => rowLabel(state.smode, state.sliders[p.slider].dim, -0.25));
  const longest = Math.max(0, ...[...texts, ...sliders].map((t) => t.length));
  return longest ? longest + 1 : 0;
}

// Rebuild the panels (keeping those whose id stays, so images do not blink) and redraw all.
function render() {
  const model = currentModel();
  if (!model) return;
  if (state.view === "classes" && !model.conditional) state.view = "grid";
  syncControls();
  writeState();
  panels = panelsFor(model);
  const container = $("panels");
  const keep = new Set(panels.map((p) => p.id));
  for (const [id, view] of views) {
    if (!keep.has(id) || (id.startsWith("slider-") && view.sliderCount !== state.sliders.length)) {
      if (view.img.src.startsWith("blob:")) URL.revokeObjectURL(view.img.src);
      view.node.remove();
      views.delete(id);
    }
  }
  panels.forEach((panel, i) => {
    let view = views.get(panel.id);
    if (!view) {
      view = createPanel(panel);
      view.sliderCount = state.sliders.length;
      views.set(panel.id, view);
      applyPanel(view, panel, model);
    }
    if (container.children[i] !== view.node) container.insertBefore(view.node, container.children[i] ?? null);
  });
  container.style.setProperty("--row-labels", `${labelWidth(panels)}ch`);
  container.dataset.view = state.view;
  if (!views.has(currentId)) currentId = null;
  makeCurrent(currentId ?? panels[panels.length - 1]?.id ?? null);
  for (const view of views.values()) view.node.classList.toggle("current", view.node.dataset.panel === currentId);
  for (const panel of panels) run(panel.id);
}

function bind() {
  $("controls").addEventListener("submit", (event) => event.preventDefault());
  $("key").value = apiKey;
  const applyKey = () => {
    apiKey = $("key").value.trim();
    if (apiKey) sessionStorage.setItem(KEY_STORAGE, apiKey);
    else sessionStorage.removeItem(KEY_STORAGE);
    loadModels();
  };
  $("key-apply").addEventListener("click", applyKey);
  $("key").addEventListener("keydown", (event) => {
    if (event.key === "Enter") applyKey();
  });
  $("model").addEventListener("change", () => {
    state.model = $("model").value;
    state.classes = null;
    state.label = 0;
    render();
  });
  for (const radio of document.querySelectorAll("input[name=view]")) {
    radio.addEventListener("change", () => {
      state.view = radio.value;
      render();
    });
  }
  for (const radio of document.querySelectorAll("input[name=smode]")) {
    radio.addEventListener("change", () => {
      state.smode = radio.value;
      render();
    });
  }
  $("seed").addEventListener("change", () => {
    const text = $("seed").value.trim();
    if (!/^\d+$/.test(text) || BigInt(text) > 2n ** 63n - 1n) {
      fieldError("seed", "A seed is a whole number from 0 to 2^63 − 1.");
      return;
    }
    fieldError("seed", null);
    state.seed = text.replace(/^0+(?=\d)/, "");
    render();
  });
  $("random-seed").addEventListener("click", () => {
    fieldError("seed", null);
    state.seed = String(crypto.getRandomValues(new Uint32Array(1))[0] >>> 1);
    render();
  });
  const positive = (id, key) => $(id).addEventListener("change", () => {
    const value = Number($(id).value);
    if (Number.isInteger(value) && value >= 1) {
      state[key] = value;
      render();
    }
  });
  positive("n", "n");
  positive("columns", "columns");
  $("scale").addEventListener("change", () => {
    state.scale = Number($("scale").value);
    render();
  });
  $("label").addEventListener("change", () => {
    state.label = Number($("label").value);
    render();
  });
  $("classes").addEventListener("change", () => {
    state.classes = [...$("classes").querySelectorAll("input:checked")].map((box) => Number(box.value));
    render();
  });
  $("classes-all").addEventListener("click", () => {
    state.classes = null;
    render();
  });
  $("classes-none").addEventListener("click", () => {
    state.classes = [];
    render();
  });
  $("add-slider").addEventListener("click", () => {
    const model = currentModel();
    const used = new Set(state.sliders.map((x) => x.dim));
    let dim = Number($("new-dim").value === "" ? NaN : $("new-dim").value);
    if (!Number.isInteger(dim) || dim < 0) {
      dim = 0;
      while (used.has(dim)) dim += 1;
    }
    if (model && dim >= model.latent_dim) dim = model.latent_dim - 1;
    state.sliders.push({ dim, value: 0 });
    $("new-dim").value = "";
    render();
    views.get(`slider-${state.sliders.length - 1}`)?.node.querySelector("input[type=range]").focus();
  });
  $("mode").addEventListener("change", () => {
    state.mode = $("mode").value;
    render();
  });
  $("dims").addEventListener("change", () => {
    const dims = $("dims").value.trim() === "" ? [] : parseInts($("dims").value);
    fieldError("dims", dims ? null : "Dimensions are whole numbers separated by commas.");
    if (dims) {
      state.dims = dims;
      render();
    }
  });
  $("values").addEventListener("change", () => {
    const values = parseNumbers($("values").value);
    fieldError("values", values ? null : "Values are numbers separated by commas.");
    if (values) {
      state.values = values;
      render();
    }
  });
  $("presets").replaceChildren(...PRESETS.map((preset) => {
    const button = el("button", { type: "button", textContent: preset.text, title: preset.title });
    button.setAttribute("aria-label", `${preset.text}: ${preset.title}`);
    button.addEventListener("click", () => {
      Object.assign(state, { view: "experiment", mode: preset.mode, dims: [...preset.dims], values: [...preset.values] });
      if (preset.n) state.n = preset.n;
      render();
    });
    return button;
  }));
  $("copy-curl").addEventListener("click", () => copy($("curl").textContent));
  $("copy-sdk").addEventListener("click", () => copy($("sdk").textContent));
}

// -- start --------------------------------------------------------------------------------

let state = readState(location.search);
let apiKey = sessionStorage.getItem(KEY_STORAGE) ?? "";
let models = [];
let panels = [];
let currentId = null;
let syncedModel = null;
const views = new Map(); // panel id -> its DOM and request bookkeeping

bind();
loadModels();
