// Small helpers to build the DOM without innerHTML on data (no injection from payloads).
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const number = new Intl.NumberFormat('en-US');
export const fmt = (n) => (n === null || n === undefined ? '–' : number.format(n));
export function ms(v) {
  if (v === null || v === undefined) return '–';
  if (v >= 1000) return `${(v / 1000).toFixed(1)} s`;
  if (v >= 1) return `${v.toFixed(0)} ms`;
  return `${(v * 1000).toFixed(0)} µs`;
}
export function pct(v) { return v === null || v === undefined ? '–' : `${(v * 100).toFixed(1)} %`; }
export function time(unixMs) {
  return unixMs ? new Date(unixMs).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '–';
}

export function table(columns, rows, onRow) {
  return el('table', {},
    el('thead', {}, el('tr', {}, columns.map((c) => el('th', { scope: 'col' }, c)))),
    el('tbody', {}, rows.map((r) => {
      const tr = el('tr', { class: onRow ? 'clickable' : undefined }, r.cells.map((c) => el('td', {}, c)));
      if (onRow) {
        tr.tabIndex = 0;
        tr.addEventListener('click', () => onRow(r));
        tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') onRow(r); });
      }
      if (r.testid) tr.dataset.testid = r.testid;
      return tr;
    })));
}

export function stateBadge(state) {
  return el('span', { class: `state ${state}`, 'data-state': state }, state);
}

// Resolves true when the user confirms `text` in the confirm dialog.
export function confirm(text, ok = 'Confirm') {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = ok;
  return new Promise((resolve) => {
    const form = document.getElementById('confirm-form');
    const cancel = document.getElementById('confirm-cancel');
    const done = (v) => {
      form.removeEventListener('submit', onOk);
      cancel.removeEventListener('click', onCancel);
      dialog.close();
      resolve(v);
    };
    const onOk = (e) => { e.preventDefault(); done(true); };
    const onCancel = () => done(false);
    form.addEventListener('submit', onOk);
    cancel.addEventListener('click', onCancel);
    dialog.showModal();
  });
}
