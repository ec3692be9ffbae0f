// Live view (#/live): the stream as fragmented MP4 over a WebSocket into Media Source Extensions
// (vigil.web.live), or JPEG snapshots about twice a second where MSE lacks the codec; the main/sub
// switch, a snapshot download, the motion overlay (from the alertStream) and, on a dome, the PTZ pad.
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, field, isapi, sessionEnded } from "./api.js";
import { RecordButton } from "./manualrecord.js";
import { PtzPad } from "./ptzpad.js";
import { html } from "./ui.js";

const STREAMS = [
  { id: 101, label: "Main stream" },
  { id: 102, label: "Sub stream" },
];
const SNAPSHOT_MS = 500; // about 2 pictures a second (issue 8)
const MAX_LAG_S = 1.0; // further behind the newest picture than this: jump to it
const KEEP_S = 10; // decoded video kept behind the playhead; older is removed from the buffer
const RETRY_MS = 1500;
const ALERTS = "/ISAPI/Event/notification/alertStream";
const ALERT_END = "</EventNotificationAlert>";
// The socket's close codes (vigil.web.live): what to tell, and whether to open it again.
const CLOSED = {
  4401: ["Your session has ended: log in again.", false],
  4404: ["This stream is disabled on the device.", false],
  4408: ["The connection was too slow; reconnecting…", true],
  4410: ["The stream changed; reconnecting…", true],
  4429: ["Too many live views of this stream are open.", false],
};

/** `?live=snapshot` in the page's address forces the snapshot view (a choice of this page: it
 * serves browsers whose MSE misbehaves, and lets the tests cover the fallback in Chromium). */
function forcedFallback() {
  return new URLSearchParams(location.search).get("live") === "snapshot";
}

function liveUrl(stream) {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/live/${stream}`;
}

/** The stream's current picture as a JPEG blob (the device scales it to the stream's size). */
export async function picture(stream) {
  const reply = await fetch(`/ISAPI/Streaming/channels/${stream}/picture`, { credentials: "same-origin" });
  if (!reply.ok) throw new Error(`The device gave no picture (HTTP ${reply.status}).`);
  return reply.blob();
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

/** One live view: the socket's messages appended in order to a SourceBuffer of `video`. */
class MsePlayer {
  constructor(video, stream, events) {
    this.video = video;
    this.events = events; // { playing(meta), fallback(reason), ended(text, retry) }
    this.queue = [];
    this.socket = new WebSocket(liveUrl(stream));
    this.socket.binaryType = "arraybuffer";
    this.socket.onmessage = (message) => this.receive(message.data);
    this.socket.onclose = (event) => this.closed(event);
  }

  receive(data) {
    if (typeof data === "string") this.start(JSON.parse(data));
    else {
      this.queue.push(data);
      this.feed();
    }
  }

  start(meta) {
    if (!window.MediaSource || !MediaSource.isTypeSupported(meta.mime)) {
      this.stop();
      this.events.fallback(`this browser's MSE cannot play ${meta.mime}`);
      return;
    }
    this.media = new MediaSource();
    this.media.addEventListener("sourceopen", () => this.open(meta), { once: true });
    this.video.src = URL.createObjectURL(this.media);
    this.events.playing(meta);
  }

  open(meta) {
    URL.revokeObjectURL(this.video.src);
    this.buffer = this.media.addSourceBuffer(meta.mime);
    this.buffer.addEventListener("updateend", () => this.feed());
    this.feed();
  }

  feed() {
    if (this.stopped || !this.buffer || this.buffer.updating) return;
    if (this.trim()) return; // its updateend feeds again
    const next = this.queue.shift();
    if (next) this.buffer.appendBuffer(next);
    this.catchUp();
  }

  /** Remove what lies well behind the playhead, so a long view holds a bounded buffer. */
  trim() {
    const ranges = this.buffer.buffered;
    const until = this.video.currentTime - KEEP_S;
    if (!ranges.length || ranges.start(0) >= until - KEEP_S) return false;
    this.buffer.remove(0, until);
    return true;
  }

  /** Live means the newest picture: skip ahead when playback lags (a cached GOP, a stall). */
  catchUp() {
    const ranges = this.buffer.buffered;
    if (!ranges.length) return;
    const end = ranges.end(ranges.length - 1);
    if (end - this.video.currentTime > MAX_LAG_S) this.video.currentTime = Math.max(end - 0.1, 0);
    if (this.video.paused) this.video.play().catch(() => {}); // a newer src interrupts play()
  }

  closed(event) {
    if (this.stopped) return;
    this.stopped = true;
    if (event.code === 4415) return this.events.fallback(event.reason || "the stream is not H.264");
    const [text, retry] = CLOSED[event.code] || ["The live view was interrupted; reconnecting…", true];
    this.events.ended(text, retry);
  }

  stop() {
    this.stopped = true;
    this.socket.close();
    if (this.media) {
      this.video.removeAttribute("src");
      this.video.load();
    }
  }
}

function LiveVideo({ stream, label, onFallback }) {
  const video = useRef(null);
  const [note, setNote] = useState("Connecting…");
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    let retry = 0;
    let shown = true;
    const player = new MsePlayer(video.current, stream, {
      playing: (meta) => setNote(`Live: ${meta.width}×${meta.height}, ${meta.mime.split('"')[1]}`),
      fallback: onFallback,
      ended: (text, again) => {
        setNote(text);
        // A handshake refused for an ended session looks like any broken connection: the
        // session's own resource tells (it sends no digest challenge, so the browser shows
        // no login dialog of its own), and an ended session takes the page back to its login.
        const reopen = () => {
          if (again && shown) retry = setTimeout(() => setAttempt((n) => n + 1), RETRY_MS);
        };
        isapi("GET", "/ISAPI/Security/sessionLogin").then(reopen, (failure) => {
          if (failure instanceof ApiError && failure.status === 401) sessionEnded();
          else reopen();
        });
      },
    });
    return () => {
      shown = false;
      clearTimeout(retry);
      player.stop();
    };
  }, [stream, attempt]);
  return html`<video ref=${video} id="live-video" muted autoplay playsinline
      aria-label=${`Live video, ${label}`}></video>
    <p class="live-note" role="status">${note}</p>`;
}

/** The snapshot fallback: the stream's JPEG, fetched again SNAPSHOT_MS after the last one. */
function SnapshotView({ stream, label, reason }) {
  const [src, setSrc] = useState("");
  const [error, setError] = useState("");
  useEffect(() => {
    let alive = true;
    let url = "";
    (async () => {
      while (alive) {
        try {
          const blob = await picture(stream);
          if (!alive) break;
          URL.revokeObjectURL(url);
          url = URL.createObjectURL(blob);
          setSrc(url);
          setError("");
        } catch (failure) {
          setError(failure.message);
        }
        await sleep(SNAPSHOT_MS);
      }
    })();
    return () => {
      alive = false;
      URL.revokeObjectURL(url);
    };
  }, [stream]);
  return html`${src && html`<img id="live-snapshot" src=${src} alt=${`Latest picture, ${label}`} />`}
    <p class="live-note" role="status">Snapshots twice a second: ${reason}.</p>
    ${error && html`<p class="field-error" role="alert">${error}</p>`}`;
}

/** Calls `onAlert({type, state, channel})` for each alert of the device's alertStream (a
 * multipart response read as it comes), until `signal` aborts. */
export async function watchAlerts(signal, onAlert) {
  const reply = await fetch(ALERTS, { credentials: "same-origin", signal });
  if (!reply.ok || !reply.body) throw new Error(`alertStream: HTTP ${reply.status}`);
  const reader = reply.body.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    text += value;
    for (let end = text.indexOf(ALERT_END); end !== -1; end = text.indexOf(ALERT_END)) {
      const xml = text.slice(text.indexOf("<EventNotificationAlert"), end + ALERT_END.length);
      text = text.slice(end + ALERT_END.length);
      const root = new DOMParser().parseFromString(xml, "application/xml").documentElement;
      onAlert({ type: field(root, "eventType"), state: field(root, "eventState"), channel: field(root, "channelID") });
    }
  }
}

/** Whether motion (vmd) is active on channel 1, as the alertStream says; kept open (and opened
 * again after a break) while the page shows. */
export function useMotion() {
  const [active, setActive] = useState(false);
  useEffect(() => {
    const abort = new AbortController();
    const follow = (alert) => {
      if (alert.type === "vmd" && alert.channel === "1") setActive(alert.state === "active");
    };
    (async () => {
      while (!abort.signal.aborted) {
        await watchAlerts(abort.signal, follow).catch(() => {});
        if (!abort.signal.aborted) await sleep(RETRY_MS);
      }
    })();
    return () => abort.abort();
  }, []);
  return active;
}

async function download(stream, setError) {
  try {
    const blob = await picture(stream);
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    link.download = `snapshot-${stream}-${stamp}.jpg`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
    setError("");
  } catch (failure) {
    setError(failure.message);
  }
}

function StreamSwitch({ stream, onChange }) {
  return html`<fieldset class="stream-switch">
    <legend>Stream</legend>
    ${STREAMS.map(
      (s) => html`<label class="choice">
        <input type="radio" name="live-stream" value=${s.id} checked=${s.id === stream}
          onChange=${() => onChange(s.id)} />
        ${s.label}
      </label>`,
    )}
  </fieldset>`;
}

export function LivePage() {
  const [stream, setStream] = useState(101);
  // Why a stream shows snapshots, per stream: the main stream may be H.264 and the sub H.265.
  const [fallbacks, setFallbacks] = useState({});
  const forced = forcedFallback() ? "asked for by the address (?live=snapshot)" : "";
  const fallback = forced || fallbacks[stream];
  const setFallback = (reason) => setFallbacks((known) => ({ ...known, [stream]: reason }));
  const [snapshotError, setSnapshotError] = useState("");
  const motion = useMotion();
  const label = STREAMS.find((s) => s.id === stream).label.toLowerCase();
  return html`<section aria-labelledby="page-title" class="live">
    <h2 id="page-title">Live view</h2>
    <div class="live-controls">
      <${StreamSwitch} stream=${stream} onChange=${setStream} />
      <div class="field">
        <button type="button" id="snapshot" aria-describedby=${snapshotError ? "snapshot-error" : undefined}
          onClick=${() => download(stream, setSnapshotError)}>Snapshot</button>
        ${snapshotError && html`<p id="snapshot-error" class="field-error" role="alert">${snapshotError}</p>`}
      </div>
      <${RecordButton} track=${stream} />
    </div>
    <div class="live-frame">
      ${fallback
        ? html`<${SnapshotView} key=${stream} stream=${stream} label=${label} reason=${fallback} />`
        : html`<${LiveVideo} key=${stream} stream=${stream} label=${label} onFallback=${setFallback} />`}
      ${motion && html`<p class="live-overlay" id="motion-overlay" role="status">Motion detected</p>`}
    </div>
    <${PtzPad} />
  </section>`;
}
