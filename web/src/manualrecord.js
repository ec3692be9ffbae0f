// The live view's Record button: manual recording of the record track of the stream being
// watched (101 records the main stream, 102 the sub stream), started and stopped over ISAPI;
// whether it is on comes from the track's status, read every few seconds (another client may
// start or stop it too).
import { useEffect, useState } from "preact/hooks";
import { ApiError, isapi } from "./api.js";
import { textAt } from "./form.js";
import { html, sleep } from "./ui.js";

const STATUS_MS = 3000;

function statusPath(track) {
  return `/ISAPI/ContentMgmt/record/tracks/${track}/status`;
}

/** The track's manual recording: true, false, or null when the stream has no record track. */
function useManualRecording(track) {
  const [on, setOn] = useState(undefined);
  const [error, setError] = useState("");
  const refresh = async () => {
    try {
      setOn(textAt(await isapi("GET", statusPath(track)), "manualRecord") === "true");
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 404) setOn(null);
      else setError(failure.message);
    }
  };
  useEffect(() => {
    let alive = true;
    setOn(undefined);
    setError("");
    (async () => {
      while (alive) {
        await refresh();
        await sleep(STATUS_MS);
      }
    })();
    return () => {
      alive = false;
    };
  }, [track]);
  return { on, error, setError, refresh };
}

export function RecordButton({ track }) {
  const state = useManualRecording(track);
  const { on, error } = state;
  async function toggle() {
    state.setError("");
    try {
      await isapi("PUT", `/ISAPI/ContentMgmt/record/control/manual/${on ? "stop" : "start"}/tracks/${track}`);
      await state.refresh();
    } catch (failure) {
      state.setError(failure.message);
    }
  }
  const note = on === null ? "This stream has no record track (Storage → Record schedule)." : "";
  const described = [note && "record-note", error && "record-error"].filter(Boolean).join(" ");
  return html`<div class="field">
    <button type="button" id="record" class=${on ? "recording" : undefined}
      disabled=${on === null || on === undefined} aria-describedby=${described || undefined} onClick=${toggle}>
      ${on ? "Stop recording" : "Record"}
    </button>
    <span role="status" class="record-state">${on ? "Recording by hand" : ""}</span>
    ${note && html`<p id="record-note" class="hint">${note}</p>`}
    ${error && html`<p id="record-error" class="field-error" role="alert">${error}</p>`}
  </div>`;
}
