// Read-only status, refreshed while shown: the device's (uptime, CPU, memory) under Device
// information, and the streams' (bit rate, frame rate, connected clients) under Video/Audio.
import { useEffect, useState } from "preact/hooks";
import { isapi } from "./api.js";
import { textAt } from "./form.js";
import { TableHead, html, sleep } from "./ui.js";

const SYSTEM_MS = 5000;
const STREAMING_MS = 3000;

/** The document at `path`, read again every `ms` while the component shows. */
function usePolled(path, ms) {
  const [root, setRoot] = useState(null);
  const [error, setError] = useState("");
  useEffect(() => {
    let alive = true;
    (async () => {
      while (alive) {
        try {
          const doc = await isapi("GET", path);
          if (alive) {
            setRoot(doc);
            setError("");
          }
        } catch (failure) {
          if (alive) setError(failure.message);
        }
        await sleep(ms);
      }
    })();
    return () => {
      alive = false;
    };
  }, [path]);
  return { root, error };
}

/** "3 d 4 h 5 min" for a number of seconds. */
export function durationText(seconds) {
  const s = Number(seconds) || 0;
  const parts = [[Math.floor(s / 86400), "d"], [Math.floor(s / 3600) % 24, "h"], [Math.floor(s / 60) % 60, "min"]];
  const shown = parts.filter(([n], i) => n > 0 || i === parts.length - 1).map(([n, unit]) => `${n} ${unit}`);
  return s < 60 ? `${s} s` : shown.join(" ");
}

function Polled({ state, id, title, children }) {
  return html`<section aria-labelledby=${id} class="status">
    <h3 id=${id}>${title}</h3>
    ${state.error && html`<p class="field-error" role="alert">${state.error}</p>`}
    ${state.root ? children(state.root) : !state.error && html`<p>Loading…</p>`}
  </section>`;
}

function systemFacts(root) {
  const cpu = `${textAt(root, "CPUList/CPU/cpuUtilization")} % (${textAt(root, "CPUList/CPU/cpuDescription")})`;
  const memory = "MemoryList/Memory";
  return [
    ["Device time", textAt(root, "currentDeviceTime")],
    ["Uptime", durationText(textAt(root, "deviceUpTime"))],
    ["CPU load", cpu],
    ["Memory used", `${textAt(root, `${memory}/memoryUsage`)} MB`],
    ["Memory free", `${textAt(root, `${memory}/memoryAvailable`)} MB`],
    ["Firmware process memory", `${textAt(root, "processMemoryMB")} MB`],
  ];
}

/** /ISAPI/System/status as facts. */
export function SystemStatus() {
  const state = usePolled("/ISAPI/System/status", SYSTEM_MS);
  return html`<${Polled} state=${state} id="device-status" title="Status">
    ${(root) => html`<dl class="facts" aria-label="Device status">
      ${systemFacts(root).map(([label, value]) => html`<dt>${label}</dt><dd>${value}</dd>`)}
    </dl>`}
  <//>`;
}

function rows(root, list, item) {
  return [...root.getElementsByTagNameNS("*", item)].filter((e) => e.parentElement.localName === list);
}

function StreamRows({ root }) {
  return rows(root, "StreamingChannelStatusList", "StreamingChannelStatus").map(
    (s) => html`<tr>
      <td>${textAt(s, "id")}</td>
      <td>${textAt(s, "enabled") === "true" ? "on" : "off"}</td>
      <td>${textAt(s, "bitrateKbps")}</td>
      <td>${textAt(s, "frameRate")}</td>
      <td>${textAt(s, "clients")}</td>
    </tr>`,
  );
}

function kilobytes(bytes) {
  return `${Math.round(Number(bytes) / 1024)} KiB`;
}

function SessionRows({ root }) {
  return rows(root, "StreamingSessionStatusList", "StreamingSessionStatus").map(
    (c) => html`<tr>
      <td>${textAt(c, "clientAddress/ipAddress")}</td>
      <td>${textAt(c, "clientUserName")}</td>
      <td>${textAt(c, "streamingChannelID")}</td>
      <td>${textAt(c, "transportProtocol")}</td>
      <td>${durationText(textAt(c, "elapsedTime"))}</td>
      <td>${kilobytes(textAt(c, "sentBytes"))}</td>
    </tr>`,
  );
}

function StreamingTables(root) {
  const sessions = textAt(root, "totalStreamingSessions");
  return html`<div class="table-scroll">
      <table class="list" aria-label="Streams">
        <${TableHead} columns=${["Stream", "Enabled", "Bit rate (kbps)", "Frame rate (fps)", "Clients"]} />
        <tbody><${StreamRows} root=${root} /></tbody>
      </table>
    </div>
    <p>${sessions === "0" ? "No client is connected." : `Connected clients: ${sessions}`}</p>
    ${sessions !== "0" && html`<div class="table-scroll">
      <table class="list" aria-label="Connected clients">
        <${TableHead} columns=${["Address", "User", "Stream", "Transport", "Connected for", "Sent"]} />
        <tbody><${SessionRows} root=${root} /></tbody>
      </table>
    </div>`}`;
}

/** /ISAPI/Streaming/status as two small tables: the streams, and the clients connected. */
export function StreamingStatus() {
  const state = usePolled("/ISAPI/Streaming/status", STREAMING_MS);
  return html`<${Polled} state=${state} id="stream-status" title="Stream status">${StreamingTables}<//>`;
}
