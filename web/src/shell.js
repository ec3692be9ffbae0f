// The app shell after login: the header, the navigation of the groups a Hikvision user expects,
// and hash routing (#/config/system/device): the device serves one page, so no server routes.
import { useEffect, useState } from "preact/hooks";
import { CapturePage } from "./capture.js";
import { DayNightPage } from "./daynight.js";
import { AlarmInputPage, AlarmOutputPage } from "./alarmio.js";
import { AlarmServerPage } from "./alarmserver.js";
import { DeviceInfoPage } from "./deviceinfo.js";
import { DefocusPage, SceneChangePage, TamperingPage, VideoLossPage } from "./events.js";
import { ExceptionsPage } from "./exceptions.js";
import { FtpPage } from "./ftp.js";
import { ImageSettingsPage } from "./image.js";
import { LivePage } from "./live.js";
import { LogPage } from "./log.js";
import { MailPage } from "./mail.js";
import { MaintenancePage } from "./maintenance.js";
import { MotionPage } from "./motion.js";
import { OsdPage } from "./osd.js";
import { PatternsPage, PatrolsPage } from "./patrols.js";
import { PlaybackPage } from "./playback.js";
import { PresetsPage } from "./presets.js";
import { PrivacyMaskPage } from "./privacy.js";
import { CertificatePage, DiscoveryPage, InterfacePage, PortsPage } from "./network.js";
import { ParkPage, PtzSettingsPage } from "./ptz.js";
import { RecordSchedulePage, StoragePage } from "./storage.js";
import { SecurityPage } from "./security.js";
import { StreamsPage } from "./streams.js";
import { Tabs } from "./tabs.js";
import { TimePage } from "./time.js";
import { UsersPage } from "./users.js";
import { html } from "./ui.js";

export const GROUPS = [
  { title: "Live", pages: [{ path: "/live", label: "Live view", page: LivePage }] },
  { title: "Playback", pages: [{ path: "/playback", label: "Playback", page: PlaybackPage }] },
  {
    title: "Configuration",
    pages: [
      {
        path: "/config/system/device",
        label: "System",
        tabs: [
          { path: "/config/system/device", label: "Device information", page: DeviceInfoPage },
          { path: "/config/system/time", label: "Time", page: TimePage },
          { path: "/config/system/users", label: "Users", page: UsersPage },
          { path: "/config/system/security", label: "Security", page: SecurityPage },
          { path: "/config/system/maintenance", label: "Maintenance", page: MaintenancePage },
          { path: "/config/system/log", label: "Log", page: LogPage },
        ],
      },
      {
        path: "/config/network",
        label: "Network",
        tabs: [
          { path: "/config/network", label: "TCP/IP", page: InterfacePage },
          { path: "/config/network/ports", label: "Ports", page: PortsPage },
          { path: "/config/network/discovery", label: "Discovery", page: DiscoveryPage },
          { path: "/config/network/https", label: "HTTPS", page: CertificatePage },
          { path: "/config/network/email", label: "Email", page: MailPage },
          { path: "/config/network/ftp", label: "FTP", page: FtpPage },
          { path: "/config/network/alarmserver", label: "Alarm server", page: AlarmServerPage },
        ],
      },
      { path: "/config/video", label: "Video/Audio", page: StreamsPage },
      {
        path: "/config/image",
        label: "Image",
        tabs: [
          { path: "/config/image", label: "Image settings", page: ImageSettingsPage },
          { path: "/config/image/daynight", label: "Day/Night", page: DayNightPage },
          { path: "/config/image/osd", label: "OSD", page: OsdPage },
          { path: "/config/image/privacy", label: "Privacy masks", page: PrivacyMaskPage },
        ],
      },
      {
        path: "/config/events",
        label: "Events",
        tabs: [
          { path: "/config/events", label: "Motion detection", page: MotionPage },
          { path: "/config/events/tampering", label: "Tampering", page: TamperingPage },
          { path: "/config/events/videoloss", label: "Video loss", page: VideoLossPage },
          { path: "/config/events/defocus", label: "Defocus", page: DefocusPage },
          { path: "/config/events/scenechange", label: "Scene change", page: SceneChangePage },
          { path: "/config/events/input", label: "Alarm input", page: AlarmInputPage },
          { path: "/config/events/output", label: "Alarm output", page: AlarmOutputPage },
          { path: "/config/events/exceptions", label: "Exceptions", page: ExceptionsPage },
        ],
      },
      {
        path: "/config/storage",
        label: "Storage",
        tabs: [
          { path: "/config/storage", label: "Storage management", page: StoragePage },
          { path: "/config/storage/schedule", label: "Record schedule", page: RecordSchedulePage },
          { path: "/config/storage/capture", label: "Capture", page: CapturePage },
        ],
      },
      {
        path: "/config/ptz",
        label: "PTZ",
        tabs: [
          { path: "/config/ptz", label: "PTZ settings", page: PtzSettingsPage },
          { path: "/config/ptz/presets", label: "Presets", page: PresetsPage },
          { path: "/config/ptz/patrols", label: "Patrols", page: PatrolsPage },
          { path: "/config/ptz/patterns", label: "Patterns", page: PatternsPage },
          { path: "/config/ptz/park", label: "Park action", page: ParkPage },
        ],
      },
    ],
  },
];
// A group's sub-pages (tabs) are routes of their own; the group's link opens its first one.
const PAGES = GROUPS.flatMap((group) => group.pages).flatMap(
  (entry) => entry.tabs?.map((tab) => ({ ...tab, parent: entry })) || [entry],
);
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
    // The effect runs after the first paint: a hash changed before then (a link followed at once,
    // or a bookmark opened during login) fired no event this listener heard.
    follow();
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
              <a href=${`#${page.path}`} aria-current=${page.path === path || page.tabs?.some((t) => t.path === path) ? "page" : undefined}>
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
    <main id="content">
      ${page.parent && html`<${Tabs} label=${page.parent.label} tabs=${page.parent.tabs} path=${path} />`}
      <${Page} label=${page.label} />
    </main>
  </div>`;
}
