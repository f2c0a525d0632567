// The kiosk page: camera capture or file upload -> POST /api/query -> 7 match cards; where the kiosk keeps feedback,
// "Is this it?" -> POST /api/feedback (yes: the best match; pick another: a tapped card; not here: null). No
// external assets.
"use strict";

const $ = (id) => document.getElementById(id);
const camera = $("camera"), preview = $("preview"), viewerEmpty = $("viewer-empty");
const startCamera = $("start-camera"), takePhoto = $("take-photo"), fileInput = $("file-input");
const statusLine = $("status"), errorBox = $("error"), results = $("results"), notFound = $("not-found");
const feedbackBox = $("feedback"), feedbackThanks = $("feedback-thanks");
let busy = false;
let answered = null;  // the last answer: {query_id, matches}, until its shopper gives feedback
// from /api/health: whether the kiosk was started with a feedback database
const feedbackOn = fetch("/api/health").then((r) => r.json()).then((health) => Boolean(health.feedback))
  .catch(() => false);

function resetFeedback() {
  answered = null;
  feedbackBox.hidden = true;
  feedbackThanks.hidden = true;
  results.classList.remove("picking");
}

async function sendFeedback(productId) {
  if (!answered) return;
  const queryId = answered.query_id;
  feedbackBox.hidden = true;
  results.classList.remove("picking");
  try {
    const response = await fetch("/api/feedback", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ query_id: queryId, product_id: productId }),
    });
    if (!response.ok) {
      const payload = await response.json().catch(() => null);
      showError(payload && payload.error ? `Your answer was not kept: ${payload.error.message}` : "Your answer was not kept.");
      return;
    }
    answered = null;
    feedbackThanks.hidden = false;
  } catch (err) {
    showError("The kiosk did not answer. Your answer was not kept.");
  }
}

$("feedback-yes").addEventListener("click", () => answered && sendFeedback(answered.matches[0].product.id));
$("feedback-none").addEventListener("click", () => sendFeedback(null));
$("feedback-pick").addEventListener("click", () => {
  if (!answered) return;
  results.classList.add("picking");
  showStatus("Tap your product in the list.");
});
results.addEventListener("click", (event) => {
  const picked = event.target.closest(".match-card");
  if (picked && results.classList.contains("picking")) sendFeedback(picked.dataset.id);
});

function showStatus(text) { statusLine.textContent = text; }

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = !text;
}

function showPhoto(blob) {
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(blob);
  preview.hidden = false;
  viewerEmpty.hidden = true;
}

// A title with the spans [start, end) that match the words read on the photo marked.
function titleWithReadWords(text, spans) {
  const parts = [];
  let at = 0;
  for (const [start, end] of spans || []) {
    if (start > at) parts.push(document.createTextNode(text.slice(at, start)));
    const mark = document.createElement("mark");
    mark.textContent = text.slice(start, end);
    parts.push(mark);
    at = end;
  }
  parts.push(document.createTextNode(text.slice(at)));
  return parts;
}

function showWords(words) {
  const line = $("words");
  line.replaceChildren();
  line.hidden = !words || !words.length;
  if (line.hidden) return;
  const label = document.createElement("span");
  label.textContent = "Read on the label: ";
  line.append(label, ...words.map((w) => {
    const word = document.createElement("span");
    word.className = "read-word";
    word.textContent = w.text;
    word.title = `confidence ${w.confidence.toFixed(2)}`;
    return word;
  }));
}

// The catalogue's own columns (price, shade, SKU...), as text: a kiosk shows them, it does not follow links.
function productFields(fields) {
  const names = Object.keys(fields || {});
  if (!names.length) return [];
  const list = document.createElement("dl");
  list.className = "match-fields";
  for (const name of names) {
    const term = document.createElement("dt");
    term.textContent = name;
    const value = document.createElement("dd");
    value.textContent = fields[name];
    list.append(term, value);
  }
  return [list];
}

function card(match, found) {
  const product = match.product;
  const item = document.createElement("li");
  item.className = "match-card" + (match.rank === 1 && found ? " best" : "");
  item.dataset.id = product.id;
  item.dataset.group = product.group;
  item.dataset.stage = match.stage;
  const picture = document.createElement("img");
  picture.src = match.image_url;
  picture.alt = product.title;
  picture.loading = "lazy";
  picture.onerror = () => { picture.hidden = true; };
  const rank = document.createElement("span");
  rank.className = "match-rank";
  rank.textContent = match.rank === 1 && found ? "Best match" : `#${match.rank}`;
  const title = document.createElement("p");
  title.className = "match-title";
  title.append(...titleWithReadWords(product.title, match.title_read));
  const meta = document.createElement("div");
  meta.className = "match-meta";
  const score = document.createElement("span");
  score.className = "match-score";
  score.textContent = match.confidence === null ? `score ${match.score.toFixed(3)}`
    : `${Math.round(match.confidence * 100)}% sure`;
  score.title = `similarity score ${match.score.toFixed(3)}`;
  const stage = document.createElement("span");
  stage.className = `stage stage-${match.stage}`;
  const stages = {
    visual: ["visual", "found by the picture"],
    text: ["text-refined", "found through the catalogue text of a visual match"],
    barcode: ["barcode", "found by the barcode on the product"],
  };
  [stage.textContent, stage.title] = stages[match.stage] || [match.stage, ""];
  meta.append(score, stage);
  item.append(rank, picture, title, ...productFields(product.fields), meta);
  return item;
}

async function search(blob, name) {
  if (busy) return;
  busy = true;
  showError("");
  notFound.hidden = true;
  results.replaceChildren();
  resetFeedback();
  showWords([]);
  showStatus("Searching…");
  const form = new FormData();
  form.append("image", blob, name);
  try {
    const response = await fetch("/api/query", { method: "POST", body: form });
    const payload = await response.json().catch(() => null);
    if (!response.ok) {
      const reason = payload && payload.error ? payload.error.message
        : response.status === 413 ? "The photo file is too large." : `The kiosk answered ${response.status}.`;
      showStatus("");
      showError(response.status < 500 ? `Sorry, we could not read this photo. ${reason}` : `Sorry: ${reason}`);
      return;
    }
    notFound.hidden = payload.found;
    results.classList.toggle("nearest", !payload.found);
    results.replaceChildren(...payload.matches.map((match) => card(match, payload.found)));
    showWords(payload.words);
    showStatus(payload.found ? `${payload.matches.length} matches`
      : `The nearest ${payload.matches.length} items, in case one of them is yours:`);
    if (payload.query_id && payload.matches.length && await feedbackOn) {
      answered = { query_id: payload.query_id, matches: payload.matches };
      feedbackBox.hidden = false;
    }
  } catch (err) {
    showStatus("");
    showError("The kiosk did not answer. Please try again.");
  } finally {
    busy = false;
  }
}

fileInput.addEventListener("change", () => {
  const file = fileInput.files && fileInput.files[0];
  if (!file) return;
  showPhoto(file);
  search(file, file.name);
  fileInput.value = "";
});

startCamera.addEventListener("click", async () => {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showError("No camera here (it needs http://localhost or https). Please choose a photo instead.");
    return;
  }
  try {
    camera.srcObject = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: "environment", width: { ideal: 1280 }, height: { ideal: 960 } }, audio: false,
    });
    await camera.play();
    camera.hidden = false;
    preview.hidden = true;
    viewerEmpty.hidden = true;
    takePhoto.hidden = false;
    startCamera.hidden = true;
    showError("");
  } catch (err) {
    showError(`The camera could not start (${err.name}). Please choose a photo instead.`);
  }
});

takePhoto.addEventListener("click", () => {
  if (!camera.videoWidth) return;
  const canvas = document.createElement("canvas");
  canvas.width = camera.videoWidth;
  canvas.height = camera.videoHeight;
  canvas.getContext("2d").drawImage(camera, 0, 0);
  canvas.toBlob((blob) => {
    if (!blob) { showError("The camera gave no picture. Please try again."); return; }
    search(blob, "camera.jpg");
  }, "image/jpeg", 0.9);
});
