// Reads the service's whole-video answers as the backend and its apps do, in a real Node process.
//
// Usage: node backend_reader.mjs SERVICE_URL LONG_VIDEO SHORT_VIDEO BUDGET_BYTES
//
// 1. uploads LONG_VIDEO to POST /process_video_async (max_frames '999999', as the coach screen
//    sends), polls GET /job_status/<id> every 3 s as the apps poll; each answer is read the
//    way the backend's proxy (axios) reads it: gzip accepted, the body joined into one string,
//    JSON.parse;
// 2. posts SHORT_VIDEO to POST /process_video (max_frames '10', the "10 frames" button);
// 3. downloads GET /result/<id> and checks that every frame has its mesh.
// Every key the readers read (docs/backend_readers.md) is checked for presence and type.
// Prints one JSON line of figures; exits 1 with the failures listed.

import http from "node:http";
import { readFileSync } from "node:fs";
import zlib from "node:zlib";

const [url, longVideo, shortVideo, budgetText] = process.argv.slice(2);
const budget = Number(budgetText);
const failures = [];
const check = (ok, words) => { if (!ok) failures.push(words); };

// As axios does in Node: Accept-Encoding gzip, the body decompressed, one string, JSON.parse.
function getJson(path) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    http.get(url + path, { headers: { "Accept-Encoding": "gzip, compress, deflate, br",
                                      Accept: "application/json" } }, (res) => {
      const chunks = [];
      let wire = 0;
      const body = res.headers["content-encoding"] === "gzip" ? res.pipe(zlib.createGunzip()) : res;
      res.on("data", (chunk) => { wire += chunk.length; });
      body.on("data", (chunk) => chunks.push(chunk));
      body.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        const json = JSON.parse(text);
        resolve({ status: res.statusCode, json, bytes: Buffer.byteLength(text), wire,
                  encoding: res.headers["content-encoding"] || "identity",
                  ms: performance.now() - started });
      });
      body.on("error", reject);
    }).on("error", reject);
  });
}

async function upload(path, video, maxFrames) {
  const form = new FormData();
  form.append("video", new Blob([readFileSync(video)], { type: "video/mp4" }), "trick-video.mp4");
  form.append("max_frames", maxFrames);
  const response = await fetch(url + path, { method: "POST", body: form });
  const text = await response.text();
  return { status: response.status, json: JSON.parse(text), bytes: Buffer.byteLength(text) };
}

const isNumber = (v) => typeof v === "number" && Number.isFinite(v);
const isString = (v) => typeof v === "string";
const isBool = (v) => typeof v === "boolean";

function checkSummary(result, where) {
  for (const key of ["fps", "total_frames", "processed_frames", "frame_count", "video_duration",
                     "processing_time_seconds", "output_size_mb"]) {
    check(isNumber(result[key]), `${where}: ${key} is not a number`);
  }
  check(isString(result.output_path), `${where}: output_path is not a string`);
  check(Array.isArray(result.resolution) && result.resolution.length === 2
        && result.resolution.every(isNumber), `${where}: resolution is not [width, height]`);
  check(result.status === "complete", `${where}: status is not complete`);
  check(Array.isArray(result.frame_acceptance) && result.frame_acceptance.every(
    (a) => isNumber(a.frame_index) && isBool(a.has_mesh) && isNumber(a.timestamp)),
    `${where}: frame_acceptance entries are not typed`);
  check(Array.isArray(result.mesh_faces) && result.mesh_faces.length === 13776,
        `${where}: mesh_faces is not the 13776 triangles`);
  check(typeof result.answer_budget === "object" && isBool(result.answer_budget.degraded),
        `${where}: answer_budget is missing`);
}

function checkFrame(frame, where) {
  for (const key of ["frameNumber", "originalFrameNumber", "timestamp", "confidence"]) {
    check(isNumber(frame[key]), `${where}: ${key} is not a number`);
  }
  for (const key of ["has3D", "meshRendered", "tracked"]) {
    check(isBool(frame[key]), `${where}: ${key} is not a boolean`);
  }
  for (const key of ["keypoints", "joints3D", "vertices", "faces"]) {
    check(Array.isArray(frame[key]), `${where}: ${key} is not a list`);
  }
  check(frame.jointAngles !== null && typeof frame.jointAngles === "object",
        `${where}: jointAngles is not an object`);
  check(frame.keypoints.length === 0 || frame.keypoints.every(
    (k) => isString(k.name) && isNumber(k.x) && isNumber(k.y) && isNumber(k.confidence)),
    `${where}: keypoints are not typed`);
}

const figures = {};
try {
  // 1. The whole video, uploaded and polled as the apps do.
  const accepted = await upload("/process_video_async", longVideo, "999999");
  check(accepted.status === 200 && accepted.json.status === "accepted" && accepted.json.job_id,
        `upload: ${JSON.stringify(accepted.json)}`);
  const jobId = accepted.json.job_id;
  let status;
  let polls = 0;
  for (;;) {
    await new Promise((done) => setTimeout(done, 3000));
    status = await getJson(`/job_status/${jobId}`);
    polls += 1;
    check(status.status === 200, `job_status answered ${status.status}`);
    if (status.json.status === "complete" || status.json.status === "error") break;
    check(isNumber(status.json.elapsed_time ?? 0), "elapsed_time is not a number");
  }
  check(status.json.status === "complete", `the job ended ${JSON.stringify(status.json.error)}`);
  const result = status.json.result;
  checkSummary(result, "status");
  check(isString(status.json.output_path) && isNumber(status.json.processing_time),
        "status: output_path or processing_time missing at the top level");
  check(status.bytes <= budget, `status answer ${status.bytes} bytes > budget ${budget}`);
  const timeline = result.pose_timeline;
  check(timeline.length === result.total_frames, "pose_timeline has not every frame");
  timeline.forEach((frame, n) => {
    checkFrame(frame, `pose_timeline[${n}]`);
    check(isString(frame.imageBase64) && (frame.imageBase64 === ""
          || frame.imageBase64.startsWith("data:image/jpeg;base64,")),
          `pose_timeline[${n}].imageBase64 is not a data URI`);
  });
  result.frames.forEach((frame, n) => {
    checkFrame(frame, `frames[${n}]`);
    const person = frame.persons[0];
    check(person && Array.isArray(person.meshVertices) && isNumber(person.personId),
          `frames[${n}].persons[0] is not a person`);
    check(frame.meshRendered === (person.meshVertices.length === 6890),
          `frames[${n}]: meshRendered does not say whether its mesh is there`);
  });
  const again = await getJson(`/job_status/${jobId}`);  // a poll after completion, timed
  figures.status = { bytes: status.bytes, wire_bytes: status.wire, encoding: status.encoding,
                     serve_and_parse_ms: Math.round(again.ms), polls,
                     frames: result.total_frames, answer_budget: result.answer_budget,
                     images: timeline.filter((f) => f.imageBase64).length };

  // 2. The synchronous answer, as the coach screen's "10 frames" button reads it.
  const sync = await upload("/process_video", shortVideo, "10");
  check(sync.status === 200 && sync.json.status === "success", `process_video: ${sync.status}`);
  const data = sync.json.data;
  checkSummary(data, "sync");
  check(sync.bytes <= budget, `sync answer ${sync.bytes} bytes > budget ${budget}`);
  check(data.frames.length === 10, `sync: ${data.frames.length} frames, not 10`);
  data.frames.forEach((frame, n) => {
    checkFrame(frame, `data.frames[${n}]`);
    const jpeg = Buffer.from(frame.image_base64, "base64");
    check(jpeg[0] === 0xff && jpeg[1] === 0xd8, `data.frames[${n}].image_base64 is not a JPEG`);
  });
  figures.sync = { bytes: sync.bytes, frames: data.frames.length };

  // 3. The complete result: every frame's mesh.
  const whole = await getJson(`/result/${jobId}`);
  const meshes = whole.json.frames.filter((f) => f.persons[0]?.meshVertices.length === 6890);
  check(meshes.length === whole.json.total_frames, `result: ${meshes.length} meshes of `
        + `${whole.json.total_frames} frames`);
  check(whole.json.mesh_faces.length === 13776, "result: mesh_faces is not every triangle");
  figures.result = { bytes: whole.bytes, wire_bytes: whole.wire, encoding: whole.encoding,
                     ms: Math.round(whole.ms), meshes: meshes.length };
} catch (error) {
  failures.push(`${error.name}: ${error.message}`);
}
console.log(JSON.stringify({ figures, failures }));
process.exit(failures.length ? 1 : 0);
