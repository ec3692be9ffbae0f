// Talking to the device: ISAPI XML over fetch. Reads go with the session cookie; every write also
// carries the session's CSRF token in X-CSRF-Token, which the device checks.
const NS = "http://www.hikvision.com/ver20/XMLSchema";
let csrfToken = "";
let onSessionEnd = () => {};

export function setSession(token, ended) {
  csrfToken = token;
  if (ended) onSessionEnd = ended;
}

/** The session ended where no reply said so (a live view's socket): back to the login. */
export function sessionEnded() {
  onSessionEnd(new ApiError(401, "sessionExpired", "the web session has ended"));
}

/** An ISAPI refusal: HTTP status, subStatusCode, errorMsg and the extra fields (unlockTime). */
export class ApiError extends Error {
  constructor(status, subStatus, message, extra = {}) {
    super(message || subStatus || `HTTP ${status}`);
    this.status = status;
    this.subStatus = subStatus;
    this.extra = extra;
  }
}

function parseXml(text) {
  const doc = new DOMParser().parseFromString(text, "application/xml");
  if (doc.querySelector("parsererror")) throw new ApiError(0, "badReply", "the device's reply is not XML");
  return doc.documentElement;
}

/** The text of the first element called `name` under `element` ("" when absent). */
export function field(element, name) {
  const found = element.getElementsByTagNameNS("*", name)[0];
  return found ? found.textContent : "";
}

function escapeXml(value) {
  return String(value).replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** `<root xmlns=...><k>v</k>...</root>` from a flat object. */
export function xmlDocument(root, fields) {
  const inner = Object.entries(fields).map(([k, v]) => `<${k}>${escapeXml(v)}</${k}>`).join("");
  return `<?xml version="1.0" encoding="UTF-8"?><${root} xmlns="${NS}">${inner}</${root}>`;
}

function refusal(status, text) {
  try {
    const root = parseXml(text);
    const extra = {};
    for (const child of root.children) extra[child.localName] = child.textContent;
    return new ApiError(status, extra.subStatusCode || "", extra.errorMsg || extra.statusString, extra);
  } catch {
    return new ApiError(status, "", `HTTP ${status}`);
  }
}

/** One ISAPI call -> the Response (for files: a configuration, a CSV); a refusal -> ApiError. */
export async function isapiReply(method, path, body, headers = {}) {
  const writes = method !== "GET" && method !== "HEAD";
  const reply = await fetch(path, {
    method,
    body,
    credentials: "same-origin",
    headers: {
      ...(body ? { "Content-Type": "application/xml" } : {}),
      ...(writes && csrfToken ? { "X-CSRF-Token": csrfToken } : {}),
      ...headers,
    },
  });
  if (!reply.ok) {
    const error = refusal(reply.status, await reply.text());
    if (reply.status === 401 && error.subStatus === "sessionExpired") onSessionEnd(error);
    throw error;
  }
  return reply;
}

/** One ISAPI call -> the reply's root element; a refusal -> ApiError. */
export async function isapi(method, path, body, headers = {}) {
  const text = await (await isapiReply(method, path, body, headers)).text();
  return text ? parseXml(text) : null;
}
