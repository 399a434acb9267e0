// The gesco page: start a transmission on the server, poll its progress, show the pictures side by side.
"use strict";

const token = new URLSearchParams(location.search).get("token");
const headers = token ? { Authorization: `Bearer ${token}` } : {};
const QUALITY_NAMES = { psnr_label: "PSNR label", peak_snr_db: "peak SNR (dB)", esn0_db: "Es/N0 (dB)",
                        noise_std: "sigma" };
const $ = (id) => document.getElementById(id);
let options = null;

async function call(path, init = {}) {
  const response = await fetch(path, { ...init, headers: { ...headers, ...(init.headers || {}) } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail ? JSON.stringify(body.detail) : response.statusText);
  return body;
}

function fillQualities() {
  const accepted = options.accepts[$("channel").value];
  $("quality-kind").replaceChildren(...accepted.map((kind) => new Option(QUALITY_NAMES[kind] || kind, kind)));
  $("quality").value = accepted[0] === "psnr_label" ? 10 : 5;
}

async function init() {
  options = await call("v1/demo/options");
  $("channel").replaceChildren(...options.channels.map((name) => new Option(name, name)));
  $("channel").addEventListener("change", fillQualities);
  fillQualities();
  const s = options.sampler;
  $("about").textContent = `${options.table} maps of ${options.image_size.join("x")}; sampler ${s.sampler}, ` +
    `${s.steps} steps, guidance ${s.guidance}. Columns: ${options.columns.join(", ")}.`;
}

function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result.split(",", 2)[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

function show(job) {
  const order = ["original", "received map", "denoised map", ...options.columns.slice(2)];
  const figures = order.filter((name) => job.images[name]).map((name) => {
    const figure = document.createElement("figure");
    const image = new Image();
    image.src = `data:image/png;base64,${job.images[name]}`;
    image.alt = name;
    image.dataset.column = name;
    const caption = document.createElement("figcaption");
    caption.textContent = name;
    figure.append(image, caption);
    return figure;
  });
  $("results").replaceChildren(...figures);
  $("notes").textContent = job.notes.join(" ");
}

async function transmit(event) {
  event.preventDefault();
  $("transmit").disabled = true;
  $("stage").className = "";
  try {
    const request = {
      channel: $("channel").value,
      fading: $("fading").value || null,
      quality_kind: $("quality-kind").value,
      quality: Number($("quality").value),
      seed: Number($("seed").value),
    };
    if (document.querySelector("input[name=source]:checked").value === "scene") {
      request.scene = Number($("scene").value);
    } else {
      if (!$("upload").files.length) throw new Error("choose a label map PNG first");
      request.label_png = await readFile($("upload").files[0]);
    }
    let job = await call("v1/demo", { method: "POST", body: JSON.stringify(request),
                                      headers: { "Content-Type": "application/json" } });
    $("progress").hidden = false;
    document.body.dataset.state = "running";
    while (job.state === "queued" || job.state === "running") {
      $("progress").max = job.total;
      $("progress").value = job.done;
      $("stage").textContent = `${job.stage} (${job.done}/${job.total})`;
      show(job);
      await new Promise((resolve) => setTimeout(resolve, 250));
      job = await call(`v1/demo/${job.id}`);
    }
    if (job.state === "failed") throw new Error(job.error);
    $("progress").value = job.total;
    $("stage").textContent = `done in ${job.seconds} s; sigma ${job.sigma.toFixed(3)}`;
    show(job);
    document.body.dataset.state = "done";
  } catch (error) {
    $("stage").textContent = `error: ${error.message}`;
    $("stage").className = "error";
    document.body.dataset.state = "failed";
  } finally {
    $("transmit").disabled = false;
  }
}

$("send").addEventListener("submit", transmit);
init().catch((error) => { $("stage").textContent = `error: ${error.message}`; $("stage").className = "error"; });
