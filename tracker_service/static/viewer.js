// The viewer: upload a video and follow its job, look at a finished job, follow /pose/hybrid.
// Plain ES module, no build step; three.js is vendored beside it (the page works offline).
import * as THREE from "./vendor/three.module.min.js";

const $ = (id) => document.getElementById(id);
/** How often a job's state is polled (as the apps poll /job_status), and the lists. */
const JOB_POLL_MS = 1000;
const LIST_POLL_MS = 3000;
const LIVE_POLL_MS = 2000;

// --------------------------------------------------------------------------- data access

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `${path}: HTTP ${response.status}`);
  return body;
}

/** Frames asked for per request of GET /job/<id>/frames (it answers fewer past its budget). */
const FRAMES_PER_PAGE = 50;

/**
 * A finished job as the page shows it: the one place that reads a job's result.
 *
 * The summary keys come from GET /job_status/<id>?frames=0, the frames with their meshes
 * from GET /job/<id>/frames?start=&count= page by page (the mesh triangles once per page).
 *
 * @param {string} jobId
 * @returns {Promise<{result: object, faces: Uint32Array|null, frames: Array<{index: number,
 *   time: number, source: string, persons: Array<{id: number, source: string}>,
 *   vertices: Float32Array|null}>}>} ``result``: the summary keys; per frame, the main
 *   subject's pose source (detected, interpolated, predicted or none) and mesh vertices.
 */
async function loadJob(jobId) {
  const { result } = await getJson(`/job_status/${jobId}?frames=0`);
  const frames = [];
  let faces = null;
  for (let start = 0; start !== null;) {
    const page = await getJson(`/job/${jobId}/frames?start=${start}&count=${FRAMES_PER_PAGE}`);
    faces ??= Uint32Array.from(page.mesh_faces.flat());
    for (const frame of page.frames) {
      const main = frame.meshRendered ? frame.persons[0] : null; // the main subject comes first
      frames.push({
        index: frame.originalFrameNumber,
        time: frame.timestamp,
        source: main ? main.source : "none",
        persons: frame.persons.map((p) => ({ id: p.personId, source: p.source })),
        vertices: main ? Float32Array.from(main.meshVertices.flat()) : null,
      });
    }
    start = page.next_start;
  }
  return { result, faces, frames };
}

/** Upload a video to POST /process_video_async, reporting the upload's percent. */
function upload(file, onPercent) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", "/process_video_async");
    request.responseType = "json";
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) onPercent((100 * event.loaded) / event.total);
    };
    request.onload = () => {
      if (request.status === 200) resolve(request.response);
      else reject(new Error(request.response?.error || `the upload failed: HTTP ${request.status}`));
    };
    request.onerror = () => reject(new Error("the upload failed: the service cannot be reached"));
    const form = new FormData();
    form.append("video", file);
    request.send(form);
  });
}

// --------------------------------------------------------------------------- the 3D view

/** The main subject's mesh, turned by dragging, zoomed by the wheel; drawn on demand. */
class MeshView {
  constructor(canvas) {
    this.canvas = canvas;
    this.renderer = new THREE.WebGLRenderer({ canvas, antialias: true });
    this.renderer.setPixelRatio(window.devicePixelRatio);
    this.renderer.setSize(canvas.clientWidth, canvas.clientHeight, false);
    this.scene = new THREE.Scene();
    this.scene.background = new THREE.Color(0xf2f4f7);
    this.camera = new THREE.PerspectiveCamera(35, canvas.clientWidth / canvas.clientHeight, 0.1, 50);
    this.camera.position.set(0, 0, 4.2);
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x667085, 2.0));
    const light = new THREE.DirectionalLight(0xffffff, 1.5);
    light.position.set(1, 2, 3);
    this.scene.add(light);
    this.turn = new THREE.Group(); // turned by dragging
    const upright = new THREE.Group(); // the camera's y points down: turn it up
    upright.rotation.x = Math.PI;
    this.turn.add(upright);
    this.scene.add(this.turn);
    this.geometry = new THREE.BufferGeometry();
    this.mesh = new THREE.Mesh(
      this.geometry,
      new THREE.MeshStandardMaterial({ color: 0x3b6fd8, roughness: 0.55, side: THREE.DoubleSide }),
    );
    upright.add(this.mesh);
    this.listen();
  }

  listen() {
    let last = null;
    this.canvas.addEventListener("pointerdown", (e) => {
      last = e.clientX;
      this.canvas.setPointerCapture(e.pointerId);
    });
    this.canvas.addEventListener("pointermove", (e) => {
      if (last === null) return;
      this.turn.rotation.y += (e.clientX - last) * 0.01;
      last = e.clientX;
      this.draw();
    });
    this.canvas.addEventListener("pointerup", () => { last = null; });
    this.canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      this.camera.position.z = Math.min(12, Math.max(1.5, this.camera.position.z * (1 + e.deltaY * 0.001)));
      this.draw();
    }, { passive: false });
  }

  /** Show one frame's vertices (centred on their mean), or nothing. */
  show(vertices, faces) {
    this.mesh.visible = vertices !== null;
    if (vertices !== null) {
      let position = this.geometry.getAttribute("position");
      if (!position || position.array.length !== vertices.length) {
        position = new THREE.BufferAttribute(new Float32Array(vertices.length), 3);
        this.geometry.setAttribute("position", position);
        this.geometry.setIndex(new THREE.BufferAttribute(faces, 1));
      }
      const mean = [0, 0, 0];
      for (let i = 0; i < vertices.length; i++) mean[i % 3] += (3 * vertices[i]) / vertices.length;
      for (let i = 0; i < vertices.length; i++) position.array[i] = vertices[i] - mean[i % 3];
      position.needsUpdate = true;
      this.geometry.computeVertexNormals();
      this.geometry.computeBoundingSphere();
    }
    this.draw();
  }

  draw() {
    this.renderer.render(this.scene, this.camera);
  }
}

// --------------------------------------------------------------------------- a finished job

let meshView = null;
let shownJob = null;

async function openJob(jobId) {
  const job = await loadJob(jobId);
  shownJob = { id: jobId, ...job };
  $("job-view").dataset.job = jobId;
  history.replaceState(null, "", `#${jobId}`);
  $("job-view").hidden = false;
  $("job-title").textContent = `Job ${jobId}`;
  const r = job.result;
  $("job-summary").textContent =
    `${r.total_frames} frames at ${r.fps.toFixed(2)} frames/s, ${r.resolution.join("×")}, ` +
    `analysed in ${r.processing_time_seconds.toFixed(1)} s; main subject #${r.main_person_id}.`;
  $("overlay-codec").textContent = r.output_codec;
  const video = $("overlay");
  video.src = `/output/${jobId}`;
  const scrubber = $("scrubber");
  scrubber.max = String(job.frames.length - 1);
  scrubber.value = "0";
  drawTimeline(job.frames);
  listIdentities(job.frames, r.main_person_id);
  meshView ??= new MeshView($("mesh-view"));
  showFrame(0);
  for (const row of $("jobs").tBodies[0].rows) row.classList.toggle("selected", row.dataset.job === jobId);
}

function drawTimeline(frames) {
  const timeline = $("timeline");
  timeline.replaceChildren(...frames.map((frame, k) => {
    const cell = document.createElement("span");
    cell.className = frame.source;
    cell.dataset.source = frame.source;
    cell.title = `frame ${frame.index}: ${frame.source}`;
    cell.addEventListener("click", () => seek(k));
    return cell;
  }));
}

function listIdentities(frames, mainId) {
  const seen = new Map();
  for (const frame of frames) {
    for (const person of frame.persons) {
      const counts = seen.get(person.id) ?? { frames: 0, detected: 0 };
      counts.frames += 1;
      counts.detected += person.source === "detected";
      seen.set(person.id, counts);
    }
  }
  $("identities").replaceChildren(...[...seen].map(([id, counts]) => {
    const item = document.createElement("li");
    item.textContent = `#${id}${id === mainId ? " (main subject)" : ""}: in ${counts.frames} ` +
      `frames, detected in ${counts.detected}`;
    return item;
  }));
}

/** Show result frame k: the scrubber, the timeline's mark, the mesh. */
function showFrame(k) {
  const frame = shownJob.frames[k];
  $("scrubber").value = String(k);
  $("frame-label").textContent = `${frame.index} (${frame.source})`;
  for (const cell of $("timeline").querySelectorAll(".current")) cell.classList.remove("current");
  $("timeline").children[k].classList.add("current");
  meshView.show(frame.vertices, shownJob.faces);
}

/** Move the video to result frame k (a quarter frame in, so that it shows that frame). */
function seek(k) {
  const video = $("overlay");
  video.pause();
  video.currentTime = shownJob.frames[k].time + 0.25 / shownJob.result.fps;
  showFrame(k);
}

/** The result frame shown at a video time (the last one that starts before it). */
function frameAt(time) {
  const frames = shownJob.frames;
  let low = 0;
  let high = frames.length - 1;
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (frames[middle].time <= time + 1e-3) low = middle;
    else high = middle - 1;
  }
  return low;
}

/** Keep the scrubber, timeline and mesh on the frame the video shows, frame by frame. */
function followVideo() {
  const video = $("overlay");
  const perFrame = "requestVideoFrameCallback" in video;
  let pending = false; // one chain of frame callbacks at a time
  const show = () => { if (shownJob) showFrame(frameAt(video.currentTime)); };
  const step = () => {
    pending = false;
    show();
    if (perFrame && !video.paused) {
      pending = true;
      video.requestVideoFrameCallback(step);
    }
  };
  video.addEventListener("play", () => { if (!pending) step(); });
  video.addEventListener("seeked", show);
  if (!perFrame) video.addEventListener("timeupdate", show);
  $("scrubber").addEventListener("input", (e) => seek(Number(e.target.value)));
}

// --------------------------------------------------------------------------- jobs

function stateText(job) {
  if (job.status === "processing" && job.progress) {
    return `${job.progress.stage} ${job.progress.percent.toFixed(0)}%`;
  }
  return job.status === "error" ? `error: ${job.error}` : job.status;
}

async function refreshJobs() {
  const { jobs } = await getJson("/jobs?limit=20");
  $("jobs-empty").hidden = jobs.length > 0;
  $("jobs").tBodies[0].replaceChildren(...jobs.map((job) => {
    const row = document.createElement("tr");
    row.dataset.job = job.job_id;
    row.classList.toggle("selected", shownJob?.id === job.job_id);
    const cells = [new Date(job.created_at * 1000).toLocaleString(), job.job_id.slice(0, 8), stateText(job)];
    for (const text of cells) row.insertCell().textContent = text;
    row.cells[2].className = `state-${job.status}`;
    const action = row.insertCell();
    if (job.status === "complete") {
      const button = document.createElement("button");
      button.textContent = "Show";
      button.setAttribute("aria-label", `Show job ${job.job_id}`);
      button.addEventListener("click", () => openJob(job.job_id).catch(report));
      action.append(button);
    }
    return row;
  }));
}

async function follow(jobId) {
  for (;;) {
    const job = await getJson(`/job_status/${jobId}?frames=0`);
    const percent = job.status === "complete" ? 100 : job.progress?.percent ?? 0;
    $("job-progress").value = percent;
    $("job-state").textContent = `Job ${jobId.slice(0, 8)}: ${stateText(job)}`;
    if (job.status === "complete" || job.status === "error") refreshJobs().catch(report);
    if (job.status === "complete") return openJob(jobId);
    if (job.status === "error") return;
    await new Promise((done) => setTimeout(done, JOB_POLL_MS));
  }
}

async function submit(event) {
  event.preventDefault();
  const file = $("video-file").files[0];
  $("upload-status").hidden = false;
  $("upload-progress").value = 0;
  $("job-progress").value = 0;
  $("upload-button").disabled = true;
  $("job-state").textContent = `Uploading ${file.name}…`;
  try {
    const accepted = await upload(file, (percent) => { $("upload-progress").value = percent; });
    $("upload-progress").value = 100;
    refreshJobs().catch(report);
    await follow(accepted.job_id);
  } catch (error) {
    report(error);
  } finally {
    $("upload-button").disabled = false;
  }
}

function report(error) {
  $("job-state").textContent = error.message;
  $("upload-status").hidden = false;
}

// --------------------------------------------------------------------------- live frames

function fillTable(table, rows) {
  table.tBodies[0].replaceChildren(...rows.map((cells) => {
    const row = document.createElement("tr");
    for (const [text, className] of cells) {
      const cell = row.insertCell();
      cell.textContent = text;
      if (className) cell.className = className;
    }
    return row;
  }));
}

async function refreshLive() {
  const [health, live] = await Promise.all([getJson("/health").catch((e) => ({ status: e.message, models: {} })), getJson("/live")]);
  const models = Object.entries(health.models).map(([name, state]) => `${name} ${state}`).join(", ");
  $("health").textContent = `${health.status}${health.device ? ` on ${health.device}` : ""}; ${models}` +
    (health.error ? `; ${health.error}` : "");
  fillTable($("sessions"), live.sessions.map((s) => [[s.session_id], [String(s.tracks_alive)], [`${s.idle_s} s`], [s.busy ? "yes" : "no"]]));
  fillTable($("frames"), live.frames.slice().reverse().map((f) => [
    [f.session_id], [String(f.frame_number)], [String(f.people)],
    [f.track_id === null ? "–" : `#${f.track_id}`], [f.source, f.source], [f.total_ms.toFixed(1)],
  ]));
}

// --------------------------------------------------------------------------- tabs

/** Refresh a tab's data every ``ms`` while it is shown; return a call that refreshes it now. */
function every(ms, refresh, active) {
  const tick = () => { if (active()) refresh().catch(report); };
  tick();
  setInterval(tick, ms);
  return tick;
}

const refreshers = {};

function selectTab(tab) {
  for (const other of document.querySelectorAll('[role="tab"]')) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
    $(other.getAttribute("aria-controls")).hidden = !selected;
  }
  tab.focus();
  refreshers[tab.id]?.();
}

function setUpTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  for (const [i, tab] of tabs.entries()) {
    tab.addEventListener("click", () => selectTab(tab));
    tab.addEventListener("keydown", (e) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
      if (step) selectTab(tabs[(i + step + tabs.length) % tabs.length]);
    });
  }
}

setUpTabs();
followVideo();
if (location.hash.length > 1) openJob(location.hash.slice(1)).catch(report); // /#<job id>
$("upload-form").addEventListener("submit", submit);
refreshers["tab-jobs"] = every(LIST_POLL_MS, refreshJobs, () => !$("panel-jobs").hidden && !document.hidden);
refreshers["tab-live"] = every(LIVE_POLL_MS, refreshLive, () => !$("panel-live").hidden && !document.hidden);
