// faceup web page: send each picture to POST /fix, show the original and the
// upright picture side by side with what faceup decided. No build step.
"use strict";

const drop = document.getElementById("drop");
const picker = document.getElementById("picker");
const results = document.getElementById("results");
const status = document.getElementById("status");
const template = document.getElementById("card");
// Formats a browser can show; others are previewed as JPEG.
const SHOWABLE = ["image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp"];

async function fixOne(file) {
  const card = template.content.firstElementChild.cloneNode(true);
  card.querySelector(".name").textContent = file.name;
  results.append(card);  // in the order the pictures were given
  const original = card.querySelector(".original");
  if (SHOWABLE.includes(file.type)) {
    original.src = URL.createObjectURL(file);
    original.hidden = false;
  } else {  // HEIC, AVIF, TIFF: most browsers cannot show them; say so instead of a broken image
    const note = card.querySelector(".placeholder");
    note.textContent = `${file.name}: this browser cannot show this format; the picture beside it is faceup's, as a JPEG`;
    note.hidden = false;
  }
  const form = new FormData();
  form.append("file", file);
  const minconf = document.getElementById("minconf").value;
  if (minconf !== "") form.append("min_confidence", minconf);
  if (document.getElementById("fine").checked) form.append("fine", "true");
  if (document.getElementById("thorough").checked) form.append("thorough", "true");
  if (!SHOWABLE.includes(file.type)) form.append("format", "jpeg");
  try {
    const res = await fetch("/fix", { method: "POST", body: form });
    if (!res.ok) {
      const body = await res.json().catch(() => ({ error: res.statusText }));
      throw new Error(body.error || res.statusText);
    }
    const blob = await res.blob();
    const url = URL.createObjectURL(blob);
    const rotation = res.headers.get("X-Faceup-Rotation");
    const angle = res.headers.get("X-Faceup-Angle");
    const confidence = parseFloat(res.headers.get("X-Faceup-Confidence"));
    const confident = res.headers.get("X-Faceup-Confident") === "true";
    const turned = res.headers.get("X-Faceup-Turned") === "true";
    card.querySelector(".fixed").src = url;
    // the second picture is what faceup writes: upright, or left as it was when not sure
    card.querySelector(".fixedcaption").textContent = turned ? "upright"
      : (confident ? "upright (no change needed)" : "left as it was (not sure)");
    card.querySelector(".rotation").textContent = `${rotation}° clockwise`;
    card.querySelector(".angle").textContent = angle ? `${angle}°` : "—";
    card.querySelector(".confidence").textContent = confidence.toFixed(3);
    card.querySelector(".decision").textContent = turned
      ? `turned back by ${angle ? parseFloat(angle).toFixed(1) : rotation}°`
      : (confident ? "already upright" : "not sure: left as it is");
    const link = card.querySelector(".download");
    link.href = url;
    link.hidden = false;
    link.textContent = turned ? "Download the upright picture" : "Download the picture";
    card.querySelector(".whybutton").hidden = false;
    const cd = res.headers.get("Content-Disposition") || "";
    const m = cd.match(/filename="([^"]+)"/);
    link.download = m ? m[1] : "upright-" + file.name;
    card.querySelector(".original").alt = `${file.name}, as uploaded`;
    card.querySelector(".fixed").alt = `${file.name}, upright`;
    if (document.getElementById("analyze").checked) await showFaces(card, file, form);
    setUpBackground(card, file);
    setUpWhy(card, file);
    fixedFiles.push({ name: link.download, blob });
    count(turned ? "turned" : confident ? "upright" : "unsure");
    card.dataset.state = "done";
  } catch (err) {
    card.querySelector(".error").textContent = "Error: " + err.message;
    card.querySelector(".pair").hidden = true;  // no pictures to show: no broken images
    card.querySelector("dl").hidden = true;
    card.dataset.state = "error";
    count("failed");
  }
}

// The summary row and "download all": every upright picture of this page, one ZIP.
const fixedFiles = [];
const counts = { turned: 0, unsure: 0, upright: 0, failed: 0 };
function count(what) {
  counts[what] += 1;
  const summary = document.getElementById("summary");
  summary.hidden = false;
  for (const k of Object.keys(counts)) summary.querySelector(".count-" + k).textContent = counts[k];
  document.getElementById("zip").disabled = fixedFiles.length === 0;
}

// A ZIP of stored (uncompressed) entries: pictures are compressed already.
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
async function zipOf(files) {
  const parts = [], central = [];
  let offset = 0;
  const used = new Set();
  for (const f of files) {
    let name = f.name, i = 1;
    while (used.has(name)) name = f.name.replace(/(\.[^.]*)?$/, `-${i++}$1`);
    used.add(name);
    const data = new Uint8Array(await f.blob.arrayBuffer());
    const nameBytes = new TextEncoder().encode(name);
    const crc = crc32(data);
    const head = new DataView(new ArrayBuffer(30));
    head.setUint32(0, 0x04034b50, true); head.setUint16(4, 20, true); head.setUint16(6, 0x0800, true);
    head.setUint32(14, crc, true); head.setUint32(18, data.length, true); head.setUint32(22, data.length, true);
    head.setUint16(26, nameBytes.length, true);
    const dir = new DataView(new ArrayBuffer(46));
    dir.setUint32(0, 0x02014b50, true); dir.setUint16(4, 20, true); dir.setUint16(6, 20, true);
    dir.setUint16(8, 0x0800, true); dir.setUint32(16, crc, true); dir.setUint32(20, data.length, true);
    dir.setUint32(24, data.length, true); dir.setUint16(28, nameBytes.length, true); dir.setUint32(42, offset, true);
    parts.push(head, nameBytes, data);
    central.push(dir, nameBytes);
    offset += 30 + nameBytes.length + data.length;
  }
  const size = central.reduce((n, p) => n + p.byteLength, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true); end.setUint16(8, files.length, true); end.setUint16(10, files.length, true);
  end.setUint32(12, size, true); end.setUint32(16, offset, true);
  return new Blob([...parts, ...central, end], { type: "application/zip" });
}
document.getElementById("zip").addEventListener("click", async () => {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(await zipOf(fixedFiles));
  a.download = "faceup-upright.zip";
  document.body.appendChild(a);
  a.click();
  a.remove();
});

// "why?": POST /explain, and show the picture it draws beside the upright one.
function setUpWhy(card, file) {
  const button = card.querySelector(".whybutton");
  button.addEventListener("click", async () => {
    const fig = card.querySelector(".why");
    const body = new FormData();
    body.append("file", file);
    const minconf = document.getElementById("minconf").value;
    if (minconf !== "") body.append("min_confidence", minconf);
    button.disabled = true;
    try {
      const res = await fetch("/explain", { method: "POST", body });
      if (!res.ok) {
        const b = await res.json().catch(() => ({ error: res.statusText }));
        throw new Error(b.error || res.statusText);
      }
      card.querySelector(".whyimg").src = URL.createObjectURL(await res.blob());
      fig.hidden = false;
      card.dataset.why = "shown";
    } catch (err) {
      card.querySelector(".error").textContent = "Error: " + err.message;
      card.dataset.why = "error";
    } finally {
      button.disabled = false;
    }
  });
}

// Ask /analyze for the faces of the upright picture; draw their boxes over it.
async function showFaces(card, file, form) {
  const res = await fetch("/analyze", { method: "POST", body: form });
  if (!res.ok) return;
  const result = await res.json();
  const img = card.querySelector(".fixed");
  await img.decode().catch(() => {});
  const layer = card.querySelector(".boxes");
  const list = card.querySelector(".faces");
  layer.innerHTML = "";
  list.innerHTML = "";
  const sx = img.clientWidth / img.naturalWidth, sy = img.clientHeight / img.naturalHeight;
  result.faces.forEach((f, i) => {
    const [x0, y0, x1, y1] = f.box;
    const box = document.createElement("div");
    box.className = "box";
    Object.assign(box.style, { left: `${x0 * sx}px`, top: `${y0 * sy}px`, width: `${(x1 - x0) * sx}px`, height: `${(y1 - y0) * sy}px` });
    box.innerHTML = `<span>${i + 1}</span>`;
    layer.appendChild(box);
    const parts = [];
    if (f.smile !== null) parts.push(`smile ${f.smile.toFixed(2)}`);
    if (f.age !== null) parts.push(`age ${Math.round(f.age)}`);
    if (f.gender !== null) parts.push(`${f.gender} (${f.gender_score.toFixed(2)})`);
    const li = document.createElement("li");
    li.className = "face";
    li.textContent = parts.join(", ") || "face";
    list.appendChild(li);
  });
  card.querySelector(".nofaces").hidden = result.faces.length > 0;
}

// The background tool of one card: POST /background with the original picture
// and the chosen colour, picture, blur or transparency; show the result.
// The generated backgrounds (GET /presets), fetched once for every card.
let presetList = null;
function presets() {
  presetList = presetList || fetch("/presets").then((r) => r.json()).catch(() => []);
  return presetList;
}

function setUpBackground(card, file) {
  const form = card.querySelector(".bgtool");
  const mode = form.querySelector(".bgmode");
  const colour = form.querySelector(".bgcolor");
  const picture = form.querySelector(".bgimage");
  const preset = form.querySelector(".bgpreset");
  form.hidden = false;
  presets().then((list) => {
    for (const p of list) {
      const option = document.createElement("option");
      option.value = p.name;
      option.textContent = `${p.name}: ${p.description}`;
      preset.appendChild(option);
    }
  });
  mode.addEventListener("change", () => {
    colour.hidden = mode.value !== "color";
    picture.hidden = mode.value !== "image";
    preset.hidden = mode.value !== "preset";
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const error = form.querySelector(".bgerror");
    error.textContent = "";
    form.dataset.state = "working";
    const body = new FormData();
    body.append("file", file);
    if (mode.value === "color") body.append("color", colour.value);
    if (mode.value === "blur") body.append("blur", "0");
    if (mode.value === "preset") body.append("preset", preset.value);
    if (mode.value === "transparent") body.append("transparent", "true");
    if (mode.value === "image") {
      if (!picture.files.length) { error.textContent = "Pick a background picture first."; form.dataset.state = "error"; return; }
      body.append("image", picture.files[0]);
    }
    const minconf = document.getElementById("minconf").value;
    if (minconf !== "") body.append("min_confidence", minconf);
    if (document.getElementById("fine").checked) body.append("fine", "true");
    if (mode.value !== "transparent" && !SHOWABLE.includes(file.type)) body.append("format", "jpeg");
    try {
      const res = await fetch("/background", { method: "POST", body });
      if (!res.ok) {
        const b = await res.json().catch(() => ({ error: res.statusText }));
        throw new Error(b.error || res.statusText);
      }
      const url = URL.createObjectURL(await res.blob());
      form.querySelector(".bgimg").src = url;
      form.querySelector(".bgresult").hidden = false;
      const link = form.querySelector(".bgdownload");
      link.href = url;
      const m = (res.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/);
      link.download = m ? m[1] : "background-" + file.name;
      link.hidden = false;
      form.dataset.state = "done";
    } catch (err) {
      error.textContent = "Error: " + err.message;
      form.dataset.state = "error";
    }
  });
}

async function handle(files) {
  const list = Array.from(files);
  status.textContent = `Working on ${list.length} picture(s)…`;
  for (const f of list) await fixOne(f);
  status.textContent = `Done: ${list.length} picture(s).`;
}

picker.addEventListener("change", () => handle(picker.files));
// The drop zone is a focusable label: Enter or Space opens the file picker too.
drop.addEventListener("keydown", (e) => {
  if (e.key === "Enter" || e.key === " ") { e.preventDefault(); picker.click(); }
});
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); handle(e.dataTransfer.files); });
