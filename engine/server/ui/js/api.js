// heraldd's API from the page: the key from the login dialog (kept in sessionStorage), JSON
// calls, and NDJSON streams read with fetch (EventSource cannot send Authorization).
const KEY = 'herald.key';

export function key() { return sessionStorage.getItem(KEY) ?? ''; }
export function setKey(k) { sessionStorage.setItem(KEY, k); }
export function clearKey() { sessionStorage.removeItem(KEY); }

let onUnauthorized = () => {};
export function whenUnauthorized(fn) { onUnauthorized = fn; }

function headers(extra = {}) {
  const h = { ...extra };
  if (key()) h.Authorization = `App ${key()}`;
  return h;
}

// {status, body (parsed JSON or text), ok}; a 401 also asks for the key again (unless `probe`:
// the sign-in's own check).
export async function call(method, path, body, contentType = 'application/json', probe = false) {
  const init = { method, headers: headers() };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    init.headers['Content-Type'] = contentType;
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let parsed = text;
  try { parsed = text ? JSON.parse(text) : null; } catch { /* a text answer */ }
  if (res.status === 401 && !probe) onUnauthorized();
  return { status: res.status, ok: res.ok, body: parsed };
}

// The platform's error envelope as {text, fields}.
export function errorOf(result) {
  const e = result?.body?.requestError?.serviceException;
  if (!e) return { text: `HTTP ${result.status}`, fields: {} };
  return { text: e.text ?? `HTTP ${result.status}`, fields: e.validationErrors ?? {} };
}

// Every page of a paged list.
export async function all(path) {
  const out = [];
  for (let page = 0; ; ++page) {
    const sep = path.includes('?') ? '&' : '?';
    const r = await call('GET', `${path}${sep}page=${page}&size=100`);
    if (!r.ok) throw new Error(errorOf(r).text);
    out.push(...r.body.results);
    if (page + 1 >= (r.body.paging?.totalPages ?? 0)) return out;
  }
}

// Reads an NDJSON stream, calling onLine(object) per line, reconnecting with backoff until
// `signal` aborts; onState(true|false) says whether it is connected.
export async function stream(path, onLine, signal, onState = () => {}) {
  let delay = 500;
  while (!signal.aborted) {
    try {
      const res = await fetch(path, { headers: headers(), signal });
      if (res.status === 401) { onUnauthorized(); return; }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      onState(true);
      delay = 500;
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffered = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffered += decoder.decode(value, { stream: true });
        let nl;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          if (line.trim()) onLine(JSON.parse(line));
        }
      }
    } catch (e) {
      if (signal.aborted) return;
    }
    onState(false);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 10000);
  }
}
