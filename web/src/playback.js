// Playback (#/playback): a track's day of footage as a timeline coloured by record type
// (POST /ISAPI/ContentMgmt/search), played from the moment clicked as MP4 clips from
// /ISAPI/ContentMgmt/download (the page has no RTSP), at ½× to 8×; a clip of a chosen range saved
// as a file; and the day's pictures (the channel's picture track, x03) as thumbnails.
import { useEffect, useRef, useState } from "preact/hooks";
import { field, isapi, isapiReply, xmlDocument } from "./api.js";
import { Chooser, errorsOf, textAt } from "./form.js";
import { DAY_MS, Timeline, clock, joinSpans } from "./timeline.js";
import { Field, html, saveBlob } from "./ui.js";

const SEARCH_PAGE = 200; // matches per search request; the page asks again while the device says MORE
// A click plays at most this much, then the next clip is fetched when it ends. The clip is fetched
// whole into memory before it plays, so its length is the wait before the first picture and the
// memory held: 2 minutes of a 4 Mbit/s main stream is about 60 MB, a second or two on a LAN.
const CLIP_MS = 2 * 60_000;

/** The clip length: CLIP_MS, or `?clip=<seconds>` (10 to 600) in the page's address: a shorter
 * first clip shows sooner on a slow link (and lets the tests see a span played across clips). */
function clipMs() {
  const asked = Number(new URLSearchParams(location.search).get("clip"));
  return asked >= 10 && asked <= 600 ? asked * 1000 : CLIP_MS;
}
const SPEEDS = ["0.5", "1", "2", "4", "8"];
const CLIP_SPECS = [
  { key: "clipStart", label: "From", aliases: ["startTime", "starttime"] },
  { key: "clipEnd", label: "To", aliases: ["endTime", "endtime"] },
];

/** The device's day and clock: { today: "2026-11-21", offset (ms east of UTC) }. */
function deviceClock(root) {
  const local = field(root, "localTime");
  const zone = /([+-])(\d\d):?(\d\d)$/.exec(local);
  const offset = zone ? (zone[1] === "-" ? -1 : 1) * (Number(zone[2]) * 60 + Number(zone[3])) * 60_000 : 0;
  return { today: local.slice(0, 10), offset };
}

/** The first instant of `day` ("2026-11-21") on the device's clock, as UTC epoch ms. */
function dayStartOf(day, offset) {
  return Date.parse(`${day}T00:00:00Z`) - offset;
}

function searchBody(track, from, to, position) {
  const iso = (ms) => new Date(ms).toISOString();
  return `<?xml version="1.0" encoding="UTF-8"?><CMSearchDescription>
<searchID>playback-${track}-${from}</searchID><trackIDList><trackID>${track}</trackID></trackIDList>
<timeSpanList><timeSpan><startTime>${iso(from)}</startTime><endTime>${iso(to)}</endTime></timeSpan></timeSpanList>
<maxResults>${SEARCH_PAGE}</maxResults><searchResultPosition>${position}</searchResultPosition>
</CMSearchDescription>`;
}

function matchOf(item) {
  return {
    start: Date.parse(field(item, "startTime")),
    end: Date.parse(field(item, "endTime")),
    type: field(item, "metadataDescriptor").split("/").pop(),
    uri: field(item, "playbackURI"),
  };
}

/** Every match of `track` in [from, to), page after page, oldest first. */
export async function searchAll(track, from, to) {
  const matches = [];
  for (;;) {
    const root = await isapi("POST", "/ISAPI/ContentMgmt/search", searchBody(track, from, to, matches.length));
    const items = [...root.getElementsByTagNameNS("*", "searchMatchItem")];
    matches.push(...items.map(matchOf));
    if (field(root, "responseStatusStrg") !== "MORE" || !items.length) return matches;
  }
}

/** `20261121T195000.500Z`: a playback URI's time. */
function compact(ms) {
  return new Date(ms).toISOString().replace(/[-:]/g, "");
}

/** The MP4 of [from, to) of `track`: the Response of /ISAPI/ContentMgmt/download. */
function download(track, from, to) {
  // The device reads only the track and the times from the URI; the host is Hikvision's form.
  const uri = `rtsp://${location.hostname}/Streaming/tracks/${track}/?starttime=${compact(from)}&endtime=${compact(to)}`;
  return isapiReply("POST", "/ISAPI/ContentMgmt/download", xmlDocument("downloadRequest", { playbackURI: uri }));
}

function useDeviceClock() {
  const [state, setState] = useState({ clock: null, error: "" });
  useEffect(() => {
    isapi("GET", "/ISAPI/System/time")
      .then((root) => setState({ clock: deviceClock(root), error: "" }))
      .catch((error) => setState({ clock: null, error: error.message }));
  }, []);
  return state;
}

/** The day's matches of `track` ({ matches, error, refresh }); null while searching. */
function useDaySearch(track, dayStart) {
  const [state, setState] = useState({ matches: null, error: "" });
  const [round, setRound] = useState(0);
  useEffect(() => {
    let current = true;
    setState({ matches: null, error: "" });
    searchAll(track, dayStart, dayStart + DAY_MS)
      .then((matches) => current && setState({ matches, error: "" }))
      .catch((error) => current && setState({ matches: [], error: error.message }));
    return () => (current = false);
  }, [track, dayStart, round]);
  return { ...state, refresh: () => setRound(round + 1) };
}

/** The player: clips of the track as Blob URLs in a <video>, the position on the device's clock. */
function usePlayer(track, offset) {
  const video = useRef(null);
  const clip = useRef(null); // { start, end, spanEnd, url } of the clip in the video
  const asked = useRef(0); // the latest play request: an older one that finishes late is dropped
  const [cursor, setCursor] = useState(null);
  const [note, setNote] = useState({ status: "", error: "" });
  const [speed, setSpeed] = useState("1");

  const load = async (from, spanEnd) => {
    const request = ++asked.current;
    const to = Math.min(spanEnd, from + clipMs());
    setNote({ status: `Loading ${clock(from, offset)}–${clock(to, offset)}…`, error: "" });
    try {
      const blob = await (await download(track, from, to)).blob();
      if (request !== asked.current) return;
      const old = clip.current;
      clip.current = { start: from, end: to, spanEnd, url: URL.createObjectURL(blob) };
      video.current.src = clip.current.url;
      if (old) URL.revokeObjectURL(old.url);
      setCursor(from);
      setNote({ status: `Playing ${clock(from, offset)}–${clock(to, offset)}`, error: "" });
      await video.current.play();
    } catch (error) {
      if (error.name !== "AbortError" && request === asked.current) setNote({ status: "", error: error.message });
    }
  };
  const onTime = () => clip.current && setCursor(clip.current.start + video.current.currentTime * 1000);
  // The span goes on past the clip: fetch and play the next clip from where this one ended.
  const onEnded = () => clip.current && clip.current.end < clip.current.spanEnd && load(clip.current.end, clip.current.spanEnd);
  const changeSpeed = (value) => {
    setSpeed(value);
    // The default rate too: a new clip's load resets the rate to it.
    video.current.playbackRate = video.current.defaultPlaybackRate = Number(value);
  };
  useEffect(() => () => clip.current && URL.revokeObjectURL(clip.current.url), []);
  const refuse = (error) => setNote({ status: "", error });
  return { video, cursor, note, speed, load, refuse, onTime, onEnded, changeSpeed };
}

/** What a click at `at` plays: the span under it, else the next one that day (null: none). */
function spanFor(spans, at) {
  return spans.find((span) => span.end > at && span.start <= at) || spans.find((span) => span.start > at) || null;
}

function Player({ player, offset }) {
  return html`<div class="playback-player">
    <video id="playback-video" muted playsinline controls ref=${player.video}
      onTimeUpdate=${player.onTime} onEnded=${player.onEnded}></video>
    <div class="live-controls">
      <div class="field">
        <label for="playback-speed">Speed</label>
        <select id="playback-speed" value=${player.speed} onChange=${(e) => player.changeSpeed(e.currentTarget.value)}>
          ${SPEEDS.map((speed) => html`<option value=${speed}>${speed === "0.5" ? "½" : speed}×</option>`)}
        </select>
      </div>
      <p id="playback-position" class="live-note">
        ${player.cursor !== null && `Position ${clock(player.cursor, offset)}`}
      </p>
    </div>
    <p role="status" class="live-note">${player.note.status}</p>
    ${player.note.error && html`<p class="field-error" role="alert">${player.note.error}</p>`}
  </div>`;
}

/** "07:38:41" on the day starting at `dayStart` -> epoch ms (NaN when it is not a time). */
function timeOfDay(text, dayStart) {
  const parts = /^(\d\d):(\d\d)(?::(\d\d))?$/.exec(text);
  return parts ? dayStart + ((Number(parts[1]) * 60 + Number(parts[2])) * 60 + Number(parts[3] || 0)) * 1000 : NaN;
}

function filenameOf(reply, fallback) {
  const named = /filename="([^"]+)"/.exec(reply.headers.get("Content-Disposition") || "");
  return named ? named[1] : fallback;
}

function ClipDownload({ track, dayStart }) {
  const [values, setValues] = useState({ clipStart: "", clipEnd: "" });
  const [errors, setErrors] = useState({});
  const [busy, setBusy] = useState(false);
  const set = (key) => (e) => setValues({ ...values, [key]: e.currentTarget.value });
  const save = async (event) => {
    event.preventDefault();
    const from = timeOfDay(values.clipStart, dayStart);
    const to = timeOfDay(values.clipEnd, dayStart);
    if (!(to > from)) return setErrors({ clipEnd: "The end is not after the start." });
    setErrors({});
    setBusy(true);
    try {
      const reply = await download(track, from, to);
      saveBlob(await reply.blob(), filenameOf(reply, `track${track}.mp4`));
    } catch (error) {
      setErrors(errorsOf(error, CLIP_SPECS));
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="playback-clip" aria-label="Download a clip" onSubmit=${save} novalidate>
    <h3>Download a clip</h3>
    <div class="playback-range">
      <${Field} id="clip-start" label="From" type="time" step="1" required value=${values.clipStart}
        onInput=${set("clipStart")} error=${errors.clipStart} />
      <${Field} id="clip-end" label="To" type="time" step="1" required value=${values.clipEnd}
        onInput=${set("clipEnd")} error=${errors.clipEnd} />
    </div>
    ${errors.form && html`<p id="clip-error" class="field-error" role="alert">${errors.form}</p>`}
    <button type="submit" disabled=${busy}>${busy ? "Downloading…" : "Download"}</button>
  </form>`;
}

/** A picture's address on this page's own origin (the device names it with the host it was asked by). */
function pictureSrc(uri) {
  const url = new URL(uri, location.href);
  return url.pathname + url.search;
}

function Pictures({ track, dayStart, offset }) {
  const pictureTrack = Math.floor(track / 100) * 100 + 3; // the channel's picture track (x03)
  const search = useDaySearch(pictureTrack, dayStart);
  const [large, setLarge] = useState(null);
  const dialog = useRef(null);
  useEffect(() => large && dialog.current && !dialog.current.open && dialog.current.showModal(), [large]);
  const list = search.matches;
  return html`<section class="playback-pictures" aria-labelledby="pictures-title">
    <h3 id="pictures-title">Pictures (track ${pictureTrack})</h3>
    ${search.error && html`<p class="field-error" role="alert">${search.error}</p>`}
    ${list === null ? html`<p>Searching…</p>` : !list.length && !search.error && html`<p>No pictures on this day.</p>`}
    <ul class="thumbnails">
      ${(list || []).map(
        (picture) => html`<li key=${picture.uri}>
          <button type="button" class="plain" aria-label=${`Picture ${clock(picture.start, offset)}`} onClick=${() => setLarge(picture)}>
            <img src=${pictureSrc(picture.uri)} alt="" loading="lazy" width="160" height="90" />
          </button>
        </li>`,
      )}
    </ul>
    <dialog ref=${dialog} class="picture-dialog" aria-label="Picture" onClose=${() => setLarge(null)}>
      ${large && html`<img src=${pictureSrc(large.uri)} alt=${`Picture taken at ${clock(large.start, offset)}`} />
        <p>${clock(large.start, offset)}
          <button type="button" class="plain" onClick=${() => dialog.current.close()}>Close</button></p>`}
    </dialog>
  </section>`;
}

function searchStatus(matches, spans, day) {
  if (matches === null) return "Searching…";
  if (!spans.length) return `No recordings on ${day}.`;
  return `${spans.length} recorded span${spans.length === 1 ? "" : "s"} on ${day}`;
}

function TrackDay({ track, clock: device }) {
  const [day, setDay] = useState(device.today);
  const dayStart = dayStartOf(day, device.offset);
  const search = useDaySearch(track, dayStart);
  const player = usePlayer(track, device.offset);
  const spans = joinSpans(search.matches || []);
  const pick = (at, span) => {
    const found = span || spanFor(spans, at);
    if (found) player.load(Math.max(at, found.start), found.end);
    else player.refuse(`No recording after ${clock(at, device.offset)} on ${day}.`);
  };
  return html`<div class="playback-day">
    <div class="live-controls">
      <${Field} id="playback-day" label="Day" type="date" value=${day} required
        onChange=${(e) => e.currentTarget.value && setDay(e.currentTarget.value)} />
      <button type="button" onClick=${search.refresh}>Search again</button>
    </div>
    ${search.error && html`<p class="field-error" role="alert">${search.error}</p>`}
    <p class="live-note" role="status">
      ${searchStatus(search.matches, spans, day)}
    </p>
    <${Timeline} spans=${spans} dayStart=${dayStart} offset=${device.offset} cursor=${player.cursor} onPick=${pick} />
    <${Player} player=${player} offset=${device.offset} />
    <${ClipDownload} key=${day} track=${track} dayStart=${dayStart} />
    <${Pictures} track=${track} dayStart=${dayStart} offset=${device.offset} />
  </div>`;
}

export function PlaybackPage() {
  const device = useDeviceClock();
  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">Playback</h2>
    ${device.error && html`<p class="field-error" role="alert">${device.error}</p>`}
    ${device.clock &&
    html`<${Chooser} id="playback-track" label="Track" list="/ISAPI/ContentMgmt/record/tracks"
      name=${(item) => `Track ${textAt(item, "id")} (stream ${textAt(item, "Channel")})`}>
      ${(track) => html`<${TrackDay} key=${track} track=${Number(track)} clock=${device.clock} />`}
    <//>`}
  </section>`;
}
