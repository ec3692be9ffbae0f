// Sub-navigation inside a configuration group (System: Device information, Time, Users, ...):
// a WAI-ARIA tab list of links to the pages' routes. Only the current tab is in the Tab order and
// the arrow keys (Home, End) move between tabs, so a group's tabs cost one Tab press, not one per
// page.
import { useEffect, useRef } from "preact/hooks";
import { html } from "./ui.js";

const STEPS = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };

function follow(event, tabs, index) {
  const target = { Home: 0, End: tabs.length - 1 }[event.key];
  const step = STEPS[event.key];
  if (step === undefined && target === undefined) return;
  event.preventDefault();
  location.hash = `#${tabs[target ?? (index + step + tabs.length) % tabs.length].path}`;
}

export function Tabs({ label, tabs, path }) {
  const list = useRef(null);
  useEffect(() => {
    // A tab chosen from the keyboard keeps the focus once its route is drawn.
    const here = list.current;
    if (here && here.contains(document.activeElement)) here.querySelector('[aria-selected="true"]')?.focus();
  }, [path]);
  return html`<div class="tabs" role="tablist" aria-label=${label} ref=${list}>
    ${tabs.map(
      (tab, index) => html`<a role="tab" href=${`#${tab.path}`} id=${`tab-${tab.path.split("/").pop()}`}
        aria-selected=${tab.path === path ? "true" : "false"} tabindex=${tab.path === path ? 0 : -1}
        onKeyDown=${(event) => follow(event, tabs, index)}>${tab.label}</a>`,
    )}
  </div>`;
}
