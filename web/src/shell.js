// The app shell after login: the header, the navigation of the groups a Hikvision user expects,
// and hash routing (#/config/system/device): the device serves one page, so no server routes.
import { useEffect, useState } from "preact/hooks";
import { DeviceInfoPage } from "./deviceinfo.js";
import { html } from "./ui.js";

export const GROUPS = [
  { title: "Live", pages: [{ path: "/live", label: "Live view" }] },
  { title: "Playback", pages: [{ path: "/playback", label: "Playback" }] },
  {
    title: "Configuration",
    pages: [
      { path: "/config/system/device", label: "System", page: DeviceInfoPage },
      { path: "/config/network", label: "Network" },
      { path: "/config/video", label: "Video/Audio" },
      { path: "/config/image", label: "Image" },
      { path: "/config/events", label: "Events" },
      { path: "/config/storage", label: "Storage" },
      { path: "/config/ptz", label: "PTZ" },
    ],
  },
];
const PAGES = GROUPS.flatMap((group) => group.pages);
const HOME = "/config/system/device";

function currentPath() {
  const path = location.hash.replace(/^#/, "");
  return PAGES.some((p) => p.path === path) ? path : HOME;
}

function useRoute() {
  const [path, setPath] = useState(currentPath());
  useEffect(() => {
    const follow = () => setPath(currentPath());
    window.addEventListener("hashchange", follow);
    return () => window.removeEventListener("hashchange", follow);
  }, []);
  return path;
}

function Pending({ label }) {
  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">${label}</h2>
    <p>This page is not built yet; the device's ISAPI already offers these settings.</p>
  </section>`;
}

function Navigation({ path }) {
  return html`<nav aria-label="Main">
    ${GROUPS.map(
      (group) => html`<div class="nav-group">
        <h2 class="nav-title">${group.title}</h2>
        <ul>
          ${group.pages.map(
            (page) => html`<li>
              <a href=${`#${page.path}`} aria-current=${page.path === path ? "page" : undefined}>
                ${page.label}
              </a>
            </li>`,
          )}
        </ul>
      </div>`,
    )}
  </nav>`;
}

export function Shell({ session, onLogout }) {
  const path = useRoute();
  const page = PAGES.find((p) => p.path === path);
  const Page = page.page || Pending;
  return html`<div class="shell">
    <header>
      <span class="brand">Vigil</span>
      <span class="who">${session.user} (${session.level})</span>
      <button type="button" class="secondary" onClick=${onLogout}>Log out</button>
    </header>
    <${Navigation} path=${path} />
    <main id="content"><${Page} label=${page.label} /></main>
  </div>`;
}
