// Inlet console: one small script, no framework. Pages are rendered by the server; this fills them from
// the REST API (/api/v1) with the session cookie and sends the page's CSRF token on every write.
'use strict';

(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || '';
  // unknownPolicy is a route's unknown_user as the form's selects show it (absent: fail).
  const unknownPolicy = (v) => (v === 'create' || v === 'hold' ? v : 'fail');

  const REASONS = {
    auth_rejected: ['Auth rejected', 'The request did not prove its sender: credentials or signature missing, malformed, wrong, or (signed timestamps) outside the tolerance; the detail says which.'],
    identifier_missing: ['User identifier field missing', 'The payload field mapped for user identification is not present in the request.'],
    user_not_found: ['User not found', 'No user or device in this project matches the identifier.'],
    waiting_for_user: ['Waiting for user', 'No user or device matches the identifier yet: the webhook waits for it, and the request fires when it is added (or fails as user not found when the wait runs out).'],
    attribute_type_mismatch: ['Attribute type mismatch', 'A mapped payload value could not be converted to the event attribute\u2019s type.'],
    webhook_disabled: ['Webhook disabled', 'The webhook was disabled when the request arrived.'],
    invalid_json: ['Invalid JSON', 'The request body is not valid JSON, or JSON that parsers read differently (invalid UTF-8, a control character or lone surrogate in a string, a key repeated in an object), or it nests too deeply; the detail says what and where.'],
    payload_too_large: ['Payload too large', 'The request body is over the size limit; it was not kept.'],
    invalid_form: ['Invalid form', 'The form body (urlencoded or multipart) could not be read, or is over a form limit; the detail says what and where.'],
    unsupported_media_type: ['Unsupported content type', 'The body is neither JSON nor a form (application/x-www-form-urlencoded, multipart/form-data fields), or a multipart body carries a file.'],
    webhook_deleted: ['Webhook deleted', 'The webhook was deleted before the request was processed.'],
    invalid_record: ['Invalid record', 'The request could not be read from the queue.'],
    identifier_invalid: ['User identifier invalid', 'The identifier read from the payload is longer than any user ID, email, phone or HWID can be.'],
    attribute_too_large: ['Attribute too large', 'A mapped value is over the size limit of one attribute.'],
    number_out_of_range: ['Number out of range', 'A number mapped to an integer, price or date has too many digits to be read exactly.'],
    event_too_large: ['Event too large', 'The event to fire is over the size limit of an event, or Kafka refused it as too large.'],
    event_rejected: ['Event rejected', 'Kafka refused the event record; the detail has its error.'],
    processing_error: ['Processing error', 'Processing this request failed inside Inlet (a defect); the detail says where. Other requests are not affected.'],
    expression_error: ['Expression error', 'A route\u2019s condition or a mapping\u2019s expression failed on this request; the detail says which and why.'],
    fan_out_invalid: ['Fan-out not an array', 'The field a route fires once per element of is not an array in this request.'],
    fan_out_too_large: ['Fan-out too large', 'The array a route fires once per element of has more than 1,000 elements; no event was fired.'],
    no_route: ['No route', 'No route\u2019s condition holds for this request: it was skipped, which is not a failure.'],
    no_elements: ['No elements', 'The array the route fires once per element of is absent, null or empty: the request was skipped, which is not a failure.'],
  };
  const reasonLabel = (r) => (REASONS[r] ? REASONS[r][0] : r || 'Unknown');
  // The verification results (internal/verify's Result) an auth_rejected entry's detail is, and the one
  // a payload_too_large entry's detail starts with when its signature could not be checked.
  const RESULTS = {
    signature_mismatch: 'The signature does not match the secret (a changed body, or another secret).',
    signature_header_missing: 'The signature header is missing, or another header the signature needs (such as webhook-id).',
    signature_malformed: 'The signature header cannot be read: a wrong prefix, bad hex or base64, or a wrong length.',
    timestamp_missing: 'The header with the signed timestamp is missing.',
    timestamp_outside_tolerance: 'The signed timestamp is further from now than the tolerance: a replayed request, or a clock far off.',
    credentials_missing: 'No credentials were sent: no Authorization header, or no token in the URL.',
    credentials_mismatch: 'The credentials do not match the secret (another secret, password or token).',
    signature_not_verified: 'The signature was not checked: it covers the body, which is over the size limit and was not read.',
  };
  const resultWords = (detail) => RESULTS[String(detail).split(':')[0].trim()] || '';
  const KINDS = { user_id: 'User ID', email: 'Email', phone: 'Phone', hwid: 'HWID' };
  const KIND_HINTS = {
    user_id: 'Matches by the internal user ID in Inlet.',
    email: 'Matches by email address.',
    phone: 'Matches by phone number.',
    hwid: 'Matches by device, browser, or email identifier.',
  };

  // ---- helpers -------------------------------------------------------------------------------------

  class APIError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || 'HTTP ' + status);
      this.status = status;
      this.problem = problem || {};
      this.fields = (problem && problem.errors) || [];
    }
  }

  // API calls in flight, shown as body data-inflight: with data-ready, it tells when the page shows the
  // answers to everything it asked (the browser tests wait on it instead of on time).
  let inflight = 0;
  function countCall(d) {
    inflight += d;
    document.body.dataset.inflight = String(inflight);
  }

  async function api(method, path, body, opts) {
    countCall(1);
    try {
      return await call(method, path, body, opts);
    } finally {
      countCall(-1);
    }
  }

  async function call(method, path, body, opts) {
    opts = opts || {};
    const headers = { Accept: 'application/json' };
    if (method !== 'GET') headers['X-CSRF-Token'] = csrf();
    let payload;
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      payload = opts.raw ? body : JSON.stringify(body);
    }
    if (opts.ifMatch) headers['If-Match'] = '"' + opts.ifMatch + '"';
    const res = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
    if (res.status === 401) {
      location.href = '/login?next=' + encodeURIComponent(location.pathname + location.search);
      throw new APIError(401, { detail: 'Your session ended; sign in again.' });
    }
    if (res.status === 204) return null;
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = { detail: text }; }
    if (!res.ok) throw new APIError(res.status, data);
    return data;
  }

  function el(tag, attrs, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') n.className = v;
      else if (k === 'text') n.textContent = v;
      else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(n.dataset, v);
      else n.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      n.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return n;
  }

  const fmtTime = (iso) => {
    if (!iso) return '';
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  };
  const fmtNum = (n) => Number(n || 0).toLocaleString();
  // Reasons decided at the edge: a replay cannot change them, so the replay window does not offer them.
  const EDGE_REASONS = new Set(['auth_rejected', 'webhook_disabled', 'invalid_json', 'payload_too_large', 'invalid_form', 'unsupported_media_type']);

  // reformatJSON re-lays out JSON text token by token, never converting a value: JSON.parse would turn
  // an integer above 2^53 into the nearest double (a Shopify order_id 820982911946154508 would read
  // 820982911946154500), and payloads and attributes carry such ids. Numbers, strings (escapes included)
  // and literals are copied as sent; only whitespace changes. indent 0 gives the compact form, 2 the
  // layout of JSON.stringify(v, null, 2). The text must be valid JSON (checked by the callers).
  function reformatJSON(text, indent) {
    const pad = (depth) => (indent ? '\n' + ' '.repeat(indent * depth) : '');
    let out = '';
    let depth = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') continue;
      if (c === '"') {
        let j = i + 1;
        while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
        out += text.slice(i, j + 1);
        i = j;
      } else if (c === '{' || c === '[') {
        const close = c === '{' ? '}' : ']';
        let j = i + 1;
        while (/\s/.test(text[j])) j++;
        if (text[j] === close) { out += c + close; i = j; continue; } // {} and [] stay on one line
        depth++;
        out += c + pad(depth);
      } else if (c === '}' || c === ']') {
        depth--;
        out += pad(depth) + c;
      } else if (c === ',') {
        out += ',' + pad(depth);
      } else if (c === ':') {
        out += indent ? ': ' : ':';
      } else {
        let j = i;
        while (j < text.length && !/[\s,:\]}]/.test(text[j])) j++;
        out += text.slice(i, j); // a number, true, false or null, exactly as written
        i = j - 1;
      }
    }
    return out;
  }
  const isJSON = (s) => { try { JSON.parse(s); return true; } catch (e) { return false; } };
  const pretty = (s) => {
    if (s === undefined || s === null || s === '') return '';
    if (typeof s !== 'string') return JSON.stringify(s, null, 2);
    return isJSON(s) ? reformatJSON(s, 2) : s;
  };
  const compact = (s) => (s && isJSON(s) ? reformatJSON(s, 0) : s || '');
  const debounce = (fn, ms) => { let t; return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); }; };

  let toastTimer;
  function toast(msg) {
    const t = $('#toast');
    if (!t) return;
    t.textContent = msg;
    t.classList.add('show');
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => t.classList.remove('show'), 2200);
  }

  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
    } catch (e) {
      // Clipboard API refused (no permission, not focused): fall back to a selected textarea.
      const ta = el('textarea', { class: 'sr-only', 'aria-hidden': 'true' });
      ta.value = text;
      document.body.append(ta);
      ta.select();
      try { document.execCommand('copy'); } catch (e2) { /* nothing more to try */ }
      ta.remove();
    }
    toast('Copied to clipboard');
  }

  document.addEventListener('click', (ev) => {
    const b = ev.target.closest('[data-copy]');
    if (!b) return;
    const src = document.getElementById(b.dataset.copy);
    if (!src) return;
    copyText(src.value !== undefined && src.tagName !== 'PRE' ? src.value : src.textContent);
    const old = b.textContent;
    b.textContent = 'Copied';
    b.dataset.copied = 'true';
    setTimeout(() => { b.textContent = old; }, 1500);
  });

  // The senders catalog (GET /api/v1/senders), loaded once per page when first needed.
  let catalog = null;
  function senders() {
    if (!catalog) catalog = api('GET', '/api/v1/senders').then((d) => d.senders || [], (e) => { catalog = null; throw e; });
    return catalog;
  }
  const code = (t) => el('code', {}, t);
  // A signature's header, or the Authorization header, for the words of the window and the form.
  const signatureHeader = (snd) => (snd && snd.signature ? snd.signature.header : snd && snd.verification && snd.verification.hmac ? snd.verification.hmac.header : '');

  // What the window says about the secret, by mode: its label and its hint.
  function secretWords(c, snd) {
    const title = snd && snd.provider ? snd.title : 'the service';
    switch (c.mode) {
      case 'basic':
        return ['Password', ['With the username, the sender sends ', code('Authorization: Basic \u2026'), ' (the example below has it), or calls the URL as ',
          code('https://username:password@\u2026'), '. Requests without them, or with others, are rejected.']];
      case 'token':
        return ['Token', ['It is already in the URL above: paste the whole URL. Requests without it, or with another, are rejected. The URL is the credential: share it as you would a password.']];
      case 'hmac': {
        const h = signatureHeader(snd);
        return ['Signing secret', ['The secret ' + title + ' signs with', h ? [' (Inlet checks ', code(h), ')'] : '', '. ', snd ? snd.secret_help : '']];
      }
      default:
        return ['Secret', ['Send it as the ', code('Authorization'), ' header value. It already includes the ', code('Bearer'),
          ' prefix, so use it as-is. Requests without it, or with another value, are rejected.']];
    }
  }

  // Webhook URL window: URL, secret and the ready commands, with the sender's steps when it is a
  // provider.
  async function showCredentials(c, onClose) {
    let snd = null;
    try { snd = (await senders()).find((x) => x.name === c.sender) || null; } catch (e) { /* the window works without the steps */ }
    const d = $('#url-dialog');
    const provider = snd && snd.provider;
    $('#url-dialog-title').textContent = provider ? 'Connect ' + snd.title : 'Webhook URL';
    $('#url-dialog-intro').textContent = provider ? 'Paste these into ' + snd.title + ', then send a test.' : 'Paste these into your external system\u2019s webhook settings.';
    $('#url-help').textContent = snd ? snd.url_help : '';
    $('#url-help').hidden = !snd;
    $('#username-row').hidden = c.mode !== 'basic';
    $('#username-value').value = c.username || '';
    const [label, hint] = secretWords(c, snd);
    $('#secret-label').textContent = label;
    $('#secret-hint').replaceChildren(...hint.flat().filter((x) => x !== ''));
    $('#handshake-row').hidden = !c.handshake_token;
    $('#handshake-value').value = c.handshake_token || '';
    $('#test-value').textContent = c.test_command || '';
    const timed = snd && snd.signature && (snd.signature.timestamp_header || snd.signature.format === 'stripe');
    $('#test-hint').textContent = c.mode === 'hmac'
      ? 'Sends the sample payload signed as ' + (provider ? snd.title : 'the service') + ' signs it, with the Inlet CLI.' +
        (timed ? ' The signature carries the time: run the command again rather than replaying a request.' : '')
      : 'Sends the sample payload with these credentials, with the Inlet CLI; or use the curl command below.';
    $('#example-row').hidden = c.mode === 'hmac';
    $('#example-label').textContent = 'Example request (curl)';
    $('#example-value').textContent = c.mode === 'hmac' ? '' : c.example_request;
    $('#url-value').value = c.url;
    $('#secret-value').value = c.secret;
    d.dataset.mode = c.mode || 'bearer';
    d.dataset.sender = c.sender || '';
    d.addEventListener('close', () => { if (onClose) onClose(); }, { once: true });
    d.showModal();
    $('#url-dialog-done').focus();
  }
  async function openCredentials(id) {
    try {
      await showCredentials(await api('GET', '/api/v1/webhooks/' + encodeURIComponent(id) + '/credentials'));
    } catch (e) { toast(e.message); }
  }
  document.addEventListener('click', (ev) => {
    const b = ev.target.closest('[data-show-url]');
    if (b) openCredentials(b.dataset.showUrl);
  });

  // The confirmation window answers the promise of its latest opening. Chromium dispatches a dialog's
  // close event in a later task, so a window closed with Cancel and opened again before that task ran
  // gets the first close event while open: a listener added per opening took it as the answer (Cancel)
  // to the second question, whose Delete then did nothing. So the answer of an opening whose close event
  // is still due is given when the next one starts, and a close event that arrives while the window is
  // open again is ignored.
  let confirmPending = null;
  function settleConfirm() {
    const resolve = confirmPending;
    confirmPending = null;
    if (resolve) resolve($('#confirm-dialog').returnValue === 'ok');
  }
  document.addEventListener('DOMContentLoaded', () => {
    const d = $('#confirm-dialog');
    if (d) d.addEventListener('close', () => { if (!d.open) settleConfirm(); });
  });
  function confirmDialog(title, text, okLabel) {
    const d = $('#confirm-dialog');
    settleConfirm();
    $('#confirm-title').textContent = title;
    $('#confirm-text').textContent = text;
    $('#confirm-ok').textContent = okLabel || 'Delete';
    d.returnValue = '';
    return new Promise((resolve) => {
      confirmPending = resolve;
      d.showModal();
      $('#confirm-cancel').focus();
    });
  }

  // Field errors from a problem+json: each error goes to the element whose data-error-for names its
  // field (inside root); the rest go to the summary alert.
  function clearErrors(root) {
    $$('.field-error', root).forEach((p) => { p.textContent = ''; });
    $$('[aria-invalid]', root).forEach((n) => n.removeAttribute('aria-invalid'));
  }
  function showErrors(root, summary, err, extra) {
    clearErrors(root);
    const unplaced = [];
    for (const f of err.fields || []) {
      // extra may answer the error's element or its control (the field error beside it gets the text).
      let target = extra ? extra(f) : null;
      let input = null;
      if (target && target.matches('input, select, textarea')) {
        input = target;
        target = input.closest('.field') && input.closest('.field').querySelector('.field-error');
      }
      if (!target) target = $$('[data-error-for]', root).find((p) => p.dataset.errorFor.split(' ').includes(f.field));
      if (target) {
        const folded = target.closest('details');
        if (folded) folded.open = true;
        target.textContent = target.textContent ? target.textContent + ' ' + f.message : f.message;
        if (!input) input = target.closest('.field') && target.closest('.field').querySelector('input, select, textarea');
        if (input) input.setAttribute('aria-invalid', 'true');
      } else {
        unplaced.push(f.field + ': ' + f.message);
      }
    }
    if (summary) {
      const msgs = unplaced.length ? unplaced : (err.fields && err.fields.length ? [] : [err.message]);
      summary.textContent = msgs.length ? (err.fields && err.fields.length ? 'Please fix: ' : '') + msgs.join('; ') : 'Please fix the highlighted fields.';
      summary.hidden = false;
    }
    const first = $('[aria-invalid="true"]', root);
    if (first) first.focus();
  }

  // Editing a field clears its error; the summary goes when no field is marked any more.
  function clearFieldError(ev) {
    const f = ev.target.closest && ev.target.closest('.field');
    if (!f || !ev.target.hasAttribute('aria-invalid')) return;
    ev.target.removeAttribute('aria-invalid');
    $$('.field-error', f).forEach((p) => { p.textContent = ''; });
    const form = ev.target.closest('form');
    const summary = form && form.parentElement.querySelector('.alert-error');
    if (summary && !$('[aria-invalid="true"]', form)) summary.hidden = true;
  }
  document.addEventListener('input', clearFieldError);
  document.addEventListener('change', clearFieldError);

  // Row menus: a button that toggles the menu after it; Escape and outside clicks close it; arrows move.
  function closeMenus(except) {
    $$('.menu').forEach((m) => {
      if (m === except) return;
      m.hidden = true;
      const b = m.previousElementSibling;
      if (b) b.setAttribute('aria-expanded', 'false');
    });
  }
  document.addEventListener('click', (ev) => {
    const trigger = ev.target.closest('[data-menu-trigger]');
    if (trigger) {
      const m = trigger.nextElementSibling;
      const open = m.hidden;
      closeMenus(m);
      m.hidden = !open;
      trigger.setAttribute('aria-expanded', String(open));
      if (open) { const first = $('[role="menuitem"]', m); if (first) first.focus(); }
      return;
    }
    if (!ev.target.closest('.menu')) closeMenus();
  });
  document.addEventListener('keydown', (ev) => {
    const m = ev.target.closest && ev.target.closest('.menu');
    if (ev.key === 'Escape') {
      const open = $$('.menu').find((x) => !x.hidden);
      if (open) { closeMenus(); open.previousElementSibling.focus(); }
      return;
    }
    if (m && (ev.key === 'ArrowDown' || ev.key === 'ArrowUp')) {
      ev.preventDefault();
      const items = $$('[role="menuitem"]', m);
      const i = items.indexOf(ev.target);
      items[(i + (ev.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length].focus();
    }
  });

  // ---- webhooks list ------------------------------------------------------------------------------

  function webhooksPage() {
    const params = new URLSearchParams(location.search);
    const search = $('#search');
    search.value = params.get('q') || '';
    const st = params.get('status') || '';
    const radio = $('#status-filter input[value="' + st + '"]');
    if (radio) radio.checked = true;

    let seq = 0;
    async function load() {
      const my = ++seq;
      const q = search.value.trim();
      const status = $('#status-filter input:checked').value;
      const p = new URLSearchParams();
      if (q) p.set('q', q);
      if (status) p.set('status', status);
      history.replaceState(null, '', '/webhooks' + (p.toString() ? '?' + p : ''));
      p.set('limit', '200');
      const body = $('#webhooks-body');
      let data;
      try {
        data = await api('GET', '/api/v1/webhooks?' + p);
      } catch (e) {
        if (my === seq) body.replaceChildren(el('tr', {}, el('td', { colspan: 6, class: 'loading' }, e.message)));
        return;
      }
      if (my !== seq) return; // a newer search or filter replaced this one
      const rows = data.webhooks || [];
      body.replaceChildren(...rows.map(row));
      // What the table shows now (tests wait on it rather than on a race).
      body.dataset.status = status;
      body.dataset.q = q;
      const filtered = q || status;
      $('#webhooks-table').hidden = rows.length === 0;
      $('#webhooks-empty').hidden = rows.length > 0 || filtered;
      $('#webhooks-nomatch').hidden = rows.length > 0 || !filtered;
      $('#webhooks-count').textContent = rows.length ? (data.total === 1 ? '1 webhook' : data.total + ' webhooks') : '';
    }

    function row(w) {
      const id = encodeURIComponent(w.id);
      const toggle = el('button', {
        type: 'button', class: 'btn btn-secondary btn-sm', 'data-toggle': w.id,
        onclick: async (ev) => {
          ev.target.disabled = true;
          try {
            await api('POST', '/api/v1/webhooks/' + id + (w.enabled ? '/disable' : '/enable'));
            toast(w.enabled ? 'Webhook disabled' : 'Webhook enabled');
          } catch (e) { toast(e.message); }
          load();
        },
      }, w.enabled ? 'Disable' : 'Enable');
      const menu = el('div', { class: 'menu', role: 'menu', hidden: true, 'aria-label': 'Actions for ' + w.name },
        el('a', { role: 'menuitem', href: '/webhooks/' + id + '/edit' }, 'Edit settings'),
        el('button', { type: 'button', role: 'menuitem', onclick: () => { closeMenus(); openCredentials(w.id); } }, 'Copy URL'),
        el('a', { role: 'menuitem', href: '/webhooks/' + id + '/activity' }, 'Activity log'),
        el('hr', { role: 'separator' }),
        el('button', {
          type: 'button', role: 'menuitem', class: 'danger',
          onclick: async () => {
            closeMenus();
            const ok = await confirmDialog('Delete webhook?', '\u201c' + w.name + '\u201d stops accepting requests at once and is removed from the list. Its activity log stays readable.', 'Delete');
            if (!ok) return;
            try { await api('DELETE', '/api/v1/webhooks/' + id); toast('Webhook deleted'); } catch (e) { toast(e.message); }
            load();
          },
        }, 'Delete'));
      return el('tr', { dataset: { id: w.id } },
        el('td', { class: 'name', 'data-label': 'Name' }, el('a', { href: '/webhooks/' + id + '/activity' }, w.name)),
        el('td', { 'data-label': 'Event' }, w.event, (w.routes || []).length > 1 ? el('span', { class: 'muted small' }, ' +' + (w.routes.length - 1) + (w.routes.length === 2 ? ' route' : ' routes')) : null),
        el('td', { 'data-label': 'Status' }, el('span', { class: 'badge ' + (w.enabled ? 'badge-on' : 'badge-off') }, w.enabled ? 'Enabled' : 'Disabled')),
        el('td', { class: 'num', 'data-label': 'Received' }, fmtNum(w.received)),
        el('td', { 'data-label': 'Last updated', title: w.updated_at }, fmtTime(w.updated_at)),
        el('td', { class: 'actions' }, toggle, ' ',
          el('span', { class: 'menu-wrap' },
            el('button', { type: 'button', class: 'btn btn-icon', 'data-menu-trigger': '', 'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-label': 'More actions for ' + w.name }, '\u22ef'),
            menu)));
    }

    search.addEventListener('input', debounce(load, 250));
    $$('#status-filter input').forEach((r) => r.addEventListener('change', load));
    load();
  }

  // ---- Connect step of the webhook form -----------------------------------------------------------

  // "24h0m0s" → "24h", "5m0s" → "5m": durations as the API answers them, as a user would type them.
  const shortDuration = (d) => (d ? String(d).replace(/(\d)m0s$/, '$1m').replace(/(\d)h0m$/, '$1h') : '');
  // A duration as typed: a number is seconds, anything else is text such as "5m".
  const durationValue = (t) => (/^\d+$/.test(t) ? Number(t) : t);
  // A list of header names typed with commas, spaces or new lines.
  const nameList = (t) => t.split(/[\s,]+/).filter(Boolean);
  const clone = (v) => JSON.parse(JSON.stringify(v || {}));

  // connectStep runs the Connect section: the sender from the catalog, its secret, its kept headers and
  // dedup, and its steps. current is the webhook being edited (null for a new one). It answers what
  // the form sends and where the API's connection errors go.
  async function connectStep(current) {
    const sel = $('#wh-sender');
    const secret = $('#wh-secret');
    const username = $('#wh-username');
    const queryParam = $('#wh-query-param');
    const token = $('#wh-handshake-token');
    const headers = $('#wh-headers');
    const tolerance = $('#wh-tolerance');
    const dedupKind = $('#wh-dedup-kind');
    const dedupArg = $('#wh-dedup-arg');
    const dedupWindow = $('#wh-dedup-window');
    const dedupHash = $('#wh-dedup-hash');
    const custom = { header: $('#hmac-header'), algorithm: $('#hmac-algorithm'), encoding: $('#hmac-encoding'),
      prefix: $('#hmac-prefix'), timestamp_header: $('#hmac-timestamp-header'), signed: $('#hmac-signed') };

    const cat = await senders();
    const byName = Object.fromEntries(cat.map((x) => [x.name, x]));
    const option = (x) => el('option', { value: x.name }, x.title);
    sel.replaceChildren(
      el('optgroup', { label: 'Any service' }, cat.filter((x) => !x.provider).map(option)),
      el('optgroup', { label: 'Providers' }, cat.filter((x) => x.provider).map(option)));
    const original = current ? current.sender : '';
    if (original && !byName[original]) {
      // A sender the catalog no longer has: shown, so that saving other changes keeps it.
      byName[original] = { name: original, title: original, verification: current.verification, headers: [], dedup: {}, url_help: '', secret_help: '' };
      sel.append(option(byName[original]));
    }
    const preset = new URLSearchParams(location.search).get('sender');
    sel.value = original || (preset && byName[preset] ? preset : 'inlet');

    const sender = () => byName[sel.value];
    const modeOf = (v) => (v && v.mode) || 'bearer';
    const keepsSecret = () => !!current && sel.value === original;
    // The verification the form starts from: the webhook's own while it keeps its sender (so that
    // what the form does not show is kept), else the sender's.
    const baseVerification = () => clone(keepsSecret() ? current.verification : sender().verification);
    const isCustom = (v) => modeOf(v) === 'hmac' && !(v.hmac && v.hmac.preset);
    const signsTime = (snd, v) => isCustom(v) || !!(snd.signature && (snd.signature.timestamp_header || snd.signature.format === 'stripe'));

    function setDedup(d) {
      const key = (d && d.key) || '';
      const kind = key === 'body_hash' ? 'body_hash' : key.startsWith('header:') ? 'header' : key.startsWith('body:') ? 'body' : '';
      dedupKind.value = kind;
      dedupArg.value = kind === 'header' || kind === 'body' ? key.slice(key.indexOf(':') + 1) : '';
      dedupWindow.value = shortDuration(d && d.window);
      dedupHash.value = ((d && d.hash_headers) || []).join(', ');
      showDedup();
    }
    function showDedup() {
      const k = dedupKind.value;
      $('#dedup-arg-field').hidden = k !== 'header' && k !== 'body';
      $('#wh-dedup-arg-label').textContent = k === 'body' ? 'Body field' : 'Header';
      dedupArg.placeholder = k === 'body' ? 'id' : 'X-Delivery-Id';
      $('#dedup-window-field').hidden = k === '';
      dedupWindow.placeholder = k === 'body_hash' ? '10m' : '24h';
      $('#wh-dedup-window-hint').replaceChildren(k === 'body_hash' ? 'Empty for 10 minutes; at most 24h.' : 'Empty for 24 hours; 1m to 7 days (e.g. 30m, 48h).');
      $('#dedup-hash-field').hidden = k !== 'body_hash';
    }

    // show lays the section out for the chosen sender; fill also puts v, dedup and the user's headers
    // into the fields.
    function show(fill, v, dedup, userHeaders) {
      const snd = sender();
      const m = modeOf(v);
      const keep = keepsSecret();
      $('#wh-sender-hint').textContent = snd.provider ? 'Verified as ' + snd.title + ' signs its requests' + (signatureHeader(snd) ? ' (' + signatureHeader(snd) + ').' : '.')
        : { bearer: 'The sender sends Authorization: Bearer whsec_\u2026 with each request.', basic: 'The sender sends HTTP Basic credentials.',
          token: 'The sender calls a URL that carries a token (for services that can set no header).', hmac: 'The sender signs each request with a shared secret: describe its signature below.' }[m];
      $('#secret-field').hidden = m === 'bearer';
      $('#secret-made').hidden = m !== 'bearer';
      $('#secret-made-text').textContent = keep ? 'The current secret stays: the Webhook URL window shows it.'
        : 'Inlet makes the secret (whsec_\u2026): the Webhook URL window shows it after saving.';
      $('#wh-secret-label').textContent = { hmac: 'Signing secret', basic: 'Password', token: 'Token' }[m] || 'Secret';
      $('#wh-secret-hint').textContent = m === 'hmac'
        ? (keep ? 'Leave it empty to keep the current secret; a new one replaces it at once.'
          : 'Required: the secret ' + (snd.provider ? snd.title : 'the service') + ' signs its requests with (step 2 says where to find it).')
        : (keep ? 'Leave it empty to keep the current one.' : 'Optional: leave it empty and Inlet makes one.');
      secret.required = m === 'hmac' && !keep;
      secret.setAttribute('aria-required', String(secret.required));
      $('#username-field').hidden = m !== 'basic';
      $('#query-param-field').hidden = m !== 'token';
      $('#handshake-field').hidden = snd.handshake !== 'meta_hub_challenge';
      $('#custom-hmac').hidden = !isCustom(v);
      $('#tolerance-field').hidden = !(m === 'hmac' && signsTime(snd, v));
      $('#connect-advanced summary').textContent = $('#tolerance-field').hidden ? 'Kept headers and duplicates' : 'Kept headers, duplicates and timestamp tolerance';
      const tip = snd.signature && snd.signature.tolerance ? ' (' + snd.title + '\u2019s: ' + shortDuration(snd.signature.tolerance) + ')' : '';
      tolerance.placeholder = snd.signature && snd.signature.tolerance ? shortDuration(snd.signature.tolerance) : '5m';
      $('#wh-tolerance-hint').textContent = 'How far a signed timestamp may be from now; older requests are refused as replays. 5s to 1h; empty for the default' + tip + '.';
      $('#wh-headers-hint').replaceChildren(...(snd.headers.length
        ? ['Already kept for ' + snd.title + ': ', el('span', { class: 'chips inline-chips' }, snd.headers.map((h) => el('span', { class: 'chip' }, h))),
          '. Kept headers show in the activity log and map like payload fields: headers["Name"].']
        : ['Kept headers show in the activity log and map like payload fields: headers["Name"]. Never credentials or the signature.']));
      if (fill) {
        secret.value = '';
        username.value = v.username || '';
        queryParam.value = v.query_param || '';
        const h = v.hmac || {};
        if (isCustom(v)) {
          for (const [k, input] of Object.entries(custom)) input.value = h[k] || (input.tagName === 'SELECT' ? input.options[0].value : '');
        }
        tolerance.value = shortDuration(h.tolerance);
        headers.value = (userHeaders || []).join(', ');
        setDedup(dedup);
      }
      // The steps.
      $('#steps-title').textContent = snd.provider ? 'Connect ' + snd.title : 'Connect the service';
      $('#step-url-help').textContent = snd.url_help;
      $('#step-secret-title').textContent = m === 'hmac' ? 'Its signing secret.' : 'The secret.';
      $('#step-secret-help').textContent = snd.secret_help;
      const urlToken = $('#connect-url-token');
      if (urlToken) urlToken.hidden = m !== 'token';
      const when = current && keep ? 'The Webhook URL window gives' : 'Save: the Webhook URL window then gives';
      $('#step-test-help').replaceChildren(when + ' a ready command, ', code('inlet webhook test'),
        m === 'hmac' ? ', that signs the sample payload as ' + (snd.provider ? snd.title : 'the service') + ' does.'
          : ', and a plain curl command with the credentials.');
      const again = $('#show-test');
      if (again) again.hidden = !keep;
      document.body.dataset.connectSender = snd.name;
    }

    sel.addEventListener('change', () => {
      const snd = sender();
      const keep = keepsSecret();
      const v = keep ? current.verification : snd.verification;
      show(true, clone(v), keep ? current.dedup : snd.dedup, nameList(headers.value));
    });
    dedupKind.addEventListener('change', showDedup);
    $('#reveal-secret').addEventListener('click', (ev) => {
      const shown = secret.type === 'text';
      secret.type = shown ? 'password' : 'text';
      ev.target.textContent = shown ? 'Show' : 'Hide';
      ev.target.setAttribute('aria-pressed', String(!shown));
    });
    if (current) show(true, clone(current.verification), current.dedup, current.sender_headers);
    else show(true, baseVerification(), sender().dedup, []);

    return {
      // The headers kept with each record as the form now stands: the sender's, the user's, the dedup
      // key's and the body hash's, each once (ignoring case), as the store computes kept_headers.
      kept() {
        const out = [];
        const add = (h) => { if (h && !out.some((x) => x.toLowerCase() === h.toLowerCase())) out.push(h); };
        (sender().headers || []).forEach(add);
        nameList(headers.value).forEach(add);
        if (dedupKind.value === 'header') add(dedupArg.value.trim());
        if (dedupKind.value === 'body_hash') nameList(dedupHash.value).forEach(add);
        return out;
      },
      // onChange calls fn when what kept() answers may have changed.
      onChange(fn) {
        sel.addEventListener('change', fn);
        [headers, dedupArg, dedupHash].forEach((i) => i.addEventListener('input', fn));
        dedupKind.addEventListener('change', fn);
      },
      // The connection fields of a create or an edit.
      body() {
        const snd = sender();
        const v = baseVerification();
        const m = modeOf(v);
        if (m === 'basic') v.username = username.value.trim();
        if (m === 'token') {
          if (queryParam.value.trim()) v.query_param = queryParam.value.trim();
          else delete v.query_param;
        }
        if (m === 'hmac') {
          v.hmac = v.hmac || {};
          if (isCustom(v)) {
            for (const [k, input] of Object.entries(custom)) {
              if (input.value.trim()) v.hmac[k] = input.value.trim();
              else delete v.hmac[k];
            }
          }
          const t = tolerance.value.trim();
          if (t && signsTime(snd, v)) v.hmac.tolerance = durationValue(t);
          else delete v.hmac.tolerance;
        }
        const out = { sender: snd.name, verification: v, sender_headers: nameList(headers.value) };
        const k = dedupKind.value;
        const d = {};
        if (k === 'header' || k === 'body') d.key = k + ':' + dedupArg.value.trim();
        if (k === 'body_hash') {
          d.key = 'body_hash';
          const hh = nameList(dedupHash.value);
          if (hh.length) d.hash_headers = hh;
        }
        if (k && dedupWindow.value.trim()) d.window = durationValue(dedupWindow.value.trim());
        out.dedup = d;
        if (m !== 'bearer' && secret.value !== '') out.secret = secret.value;
        if (snd.handshake === 'meta_hub_challenge' && token.value.trim()) out.handshake_token = token.value.trim();
        return out;
      },
      // Whether saving gives the webhook new credentials (a new sender, or a secret typed).
      renews() { return !current || sel.value !== original || secret.value !== ''; },
      // Where an error of an indexed connection field goes.
      place(f) {
        if (/^sender_headers\[\d+\]$/.test(f.field)) return $('#err-sender_headers');
        if (/^dedup\.hash_headers\[\d+\]$/.test(f.field)) return document.getElementById('err-dedup.hash_headers');
        return null;
      },
      // After a save: the saved webhook is what the form now edits.
      saved(w) { current = w; },
    };
  }

  // ---- webhook create / edit ----------------------------------------------------------------------

  // The form edits a webhook's routes. A webhook with one route without name, condition or fan-out (what
  // every webhook was before routes) keeps the simple form: the event in General, identify and mappings
  // under the sample, sent with the single-route API. "Add route" turns the form into route cards, sent
  // as routes; a webhook saved with several routes, or a named, conditioned or fan-out one, opens so.
  async function webhookFormPage() {
    const id = document.body.dataset.webhookId || '';
    const form = $('#webhook-form');
    const eventSel = $('#wh-event');
    const sample = $('#wh-sample');
    const kindSel = $('#wh-identify-kind');
    const identField = $('#wh-identify-field');
    const rows = $('#mapping-rows');
    const summary = $('#form-error');
    const routesList = $('#routes');
    let events = [];
    let fields = [];
    let version = 0;
    let current = null;
    let connect = null;
    let cards = []; // the route cards in order, when the form edits routes; empty for the simple form

    // The single route of the simple form, as a card is seen by the helpers below.
    const single = { rows, ident: identField, kind: kindSel, event: eventSel, forEach: () => '', label: () => '' };
    const routes = () => (cards.length ? cards : [single]);
    const eventOf = (r) => events.find((e) => String(e.id) === r.event.value);

    // The paths a field picker offers: the sample's fields; in a fan-out route the element's fields
    // (the sample's first element of the array, relative paths) and the body's as $.path.
    function fieldChoices(forEach) {
      const leaf = (f) => f.type !== 'object';
      const ex = (f) => (f.example !== undefined && f.example !== '' ? ' \u2014 ' + String(f.example).slice(0, 40) : '');
      if (!forEach) return fields.filter(leaf).map((f) => ({ path: f.path, label: f.path + ex(f) }));
      const arr = forEach === '$' ? '' : forEach.replace(/^\$\./, '');
      const first = arr + '[0]';
      const out = [];
      for (const f of fields) {
        if (!leaf(f) || !f.path.startsWith(first) || f.path === first) continue;
        const rest = f.path.slice(first.length);
        if (rest[0] === '.') out.push({ path: rest.slice(1), label: rest.slice(1) + ex(f) + ' (element)' });
        else if (rest[0] === '[' && !/^\[\d/.test(rest)) out.push({ path: rest, label: rest + ex(f) + ' (element)' });
      }
      if (arr) {
        for (const f of fields) {
          if (!leaf(f) || f.path.startsWith(arr + '[')) continue;
          const p = (f.path[0] === '[' ? '$' : '$.') + f.path;
          out.push({ path: p, label: p + ex(f) });
        }
      }
      return out;
    }
    function fillFieldSelect(sel, keep, forEach) {
      const v = keep !== undefined ? keep : sel.value;
      const opts = [el('option', { value: '' }, 'Select field')];
      const known = new Set();
      for (const c of fieldChoices(forEach || '')) {
        known.add(c.path);
        opts.push(el('option', { value: c.path }, c.label));
      }
      // Kept sender headers map like payload fields (headers.<Name>, canonical form of headers["Name"]).
      for (const h of connect ? connect.kept() : []) {
        const path = /^[A-Za-z0-9_$@-]+$/.test(h) ? 'headers.' + h : 'headers[' + JSON.stringify(h) + ']';
        if (known.has(path)) continue;
        known.add(path);
        opts.push(el('option', { value: path }, 'headers["' + h + '"] \u2014 sender header'));
      }
      if (v && !known.has(v)) opts.push(el('option', { value: v }, v + ' (not in sample)'));
      sel.replaceChildren(...opts);
      sel.value = v;
    }
    // The arrays a route can fan out over: the sample's arrays, and $ when the sample is one.
    function fillForEachSelect(sel, keep) {
      const v = keep !== undefined ? keep : sel.value;
      const opts = [el('option', { value: '' }, 'None: one event per request')];
      const known = new Set(['']);
      if (/^\s*\[/.test(sample.value)) { known.add('$'); opts.push(el('option', { value: '$' }, '$ (the body is an array)')); }
      for (const f of fields) {
        if (f.type !== 'array' || known.has(f.path)) continue;
        known.add(f.path);
        opts.push(el('option', { value: f.path }, f.path));
      }
      if (v && !known.has(v)) opts.push(el('option', { value: v }, v + ' (not in sample)'));
      sel.replaceChildren(...opts);
      sel.value = v;
    }
    function fillEventSelect(sel, keep) {
      sel.replaceChildren(el('option', { value: '' }, events.length ? 'Select an event' : 'No events yet \u2014 create one first'),
        ...events.map((e) => el('option', { value: String(e.id) }, e.name)));
      if (keep) sel.value = keep;
    }
    function fillAttrSelect(sel, keep, r) {
      const v = keep !== undefined ? keep : sel.value;
      const ev = eventOf(r);
      const opts = [el('option', { value: '' }, ev ? 'Select attribute' : 'Select an event first')];
      const attrs = ev ? ev.attributes || [] : [];
      for (const a of attrs) opts.push(el('option', { value: a.name }, a.name + ' (' + a.type + ')'));
      if (v && !attrs.some((a) => a.name === v)) opts.push(el('option', { value: v }, v + ' (not in event)'));
      sel.replaceChildren(...opts);
      sel.value = v;
    }
    function refreshRoute(r) {
      if (r.forEachSel) {
        fillForEachSelect(r.forEachSel);
        $('.r-foreach-hint', r.el).textContent = r.forEachSel.value
          ? 'One event per element: the fields below are read from the element, and from the whole body when they start with $.'
          : 'Choose an array of the sample to fire one event per element of it.';
      }
      fillFieldSelect(r.ident, undefined, r.forEach());
      $$('.mapping-row', r.rows).forEach((row) => { fillFieldSelect($('.map-field', row), undefined, r.forEach()); fillAttrSelect($('.map-attr', row), undefined, r); });
    }
    function refreshSelects() { routes().forEach(refreshRoute); }
    function renumber(r) {
      const pre = r.label();
      $$('.mapping-row', r.rows).forEach((row, i) => {
        const n = String(i + 1);
        $('.map-attr', row).setAttribute('aria-label', pre + 'Event attribute ' + n);
        $('.map-kind', row).setAttribute('aria-label', pre + 'Attribute ' + n + ' from a field or an expression');
        $('.map-field', row).setAttribute('aria-label', pre + 'Payload field for attribute ' + n);
        $('.map-expr', row).setAttribute('aria-label', pre + 'Expression for attribute ' + n);
        $('.map-onerror', row).setAttribute('aria-label', pre + 'If the value of attribute ' + n + ' does not fit');
        $('.map-remove', row).setAttribute('aria-label', pre + 'Remove attribute ' + n);
      });
    }
    function addRow(r, m) {
      const row = $('#mapping-row').content.firstElementChild.cloneNode(true);
      r.rows.append(row);
      fillAttrSelect($('.map-attr', row), m ? m.attribute : '', r);
      fillFieldSelect($('.map-field', row), m ? m.field || '' : '', r.forEach());
      const kind = $('.map-kind', row);
      const expr = $('.map-expr', row);
      expr.value = (m && m.expr) || '';
      kind.value = m && m.expr ? 'expr' : 'field';
      const showKind = () => { expr.hidden = kind.value !== 'expr'; $('.map-field', row).hidden = kind.value === 'expr'; };
      kind.addEventListener('change', () => { showKind(); (kind.value === 'expr' ? expr : $('.map-field', row)).focus(); });
      showKind();
      $('.map-onerror', row).value = m && m.on_error === 'drop' ? 'drop' : 'fail';
      $('.map-remove', row).addEventListener('click', () => { row.remove(); renumber(r); });
      renumber(r);
      return row;
    }
    // The mappings of a route's rows, and the rows sent (to place mappings[j] errors).
    function mappingsOf(r) {
      const sent = [];
      const mappings = [];
      for (const row of $$('.mapping-row', r.rows)) {
        const isExpr = $('.map-kind', row).value === 'expr';
        const m = { attribute: $('.map-attr', row).value };
        if (isExpr) m.expr = $('.map-expr', row).value.trim();
        else m.field = $('.map-field', row).value;
        if (!m.attribute && !m.field && !m.expr) continue;
        if ($('.map-onerror', row).value === 'drop') m.on_error = 'drop';
        mappings.push(m);
        sent.push(row);
      }
      return { mappings, sent };
    }

    // ---- route cards

    let cardSeq = 0;
    function addCard(route, before) {
      const li = $('#route-card').content.firstElementChild.cloneNode(true);
      const uid = 'route' + ++cardSeq;
      const r = {
        el: li, rows: $('.r-mappings', li), name: $('.r-name', li), when: $('.r-when', li), forEachSel: $('.r-foreach', li),
        event: $('.r-event', li), kind: $('.r-kind', li), ident: $('.r-ident', li), unknown: $('.r-unknown', li),
        holdFor: $('.r-hold-for', li), holdField: $('.r-hold-for-field', li),
        createEmail: $('.r-create-email', li), createPhone: $('.r-create-phone', li), createFrom: $('.r-create-from', li),
        forEach: () => r.forEachSel.value,
        label: () => 'Route ' + (cards.indexOf(r) + 1) + ': ',
      };
      for (const [cls, ctl] of [['name', r.name], ['event', r.event], ['when', r.when], ['foreach', r.forEachSel], ['kind', r.kind], ['ident', r.ident], ['unknown', r.unknown],
        ['create-email', r.createEmail], ['create-phone', r.createPhone]]) {
        ctl.id = uid + '-' + cls;
        $('.r-' + cls + '-label', li).htmlFor = ctl.id;
        const err = ctl.closest('.field').querySelector('.field-error');
        err.id = ctl.id + '-error';
        const hint = ctl.closest('.field').querySelector('.hint');
        if (hint) hint.id = ctl.id + '-hint';
        ctl.setAttribute('aria-describedby', (hint ? hint.id + ' ' : '') + err.id);
      }
      li.setAttribute('aria-labelledby', uid + '-title');
      $('.route-title', li).id = uid + '-title';
      if (before) routesList.insertBefore(li, before.el); else routesList.append(li);
      cards.splice(before ? cards.indexOf(before) : cards.length, 0, r);
      route = route || { identify: { kind: 'user_id', field: '' }, mappings: [] };
      r.name.value = route.name || '';
      r.when.value = route.when || '';
      fillEventSelect(r.event, route.event_id ? String(route.event_id) : (events.find((e) => e.name === route.event) || {}).id);
      r.kind.value = (route.identify && route.identify.kind) || 'user_id';
      r.unknown.value = unknownPolicy(route.unknown_user);
      r.holdFor.value = route.hold_for || '';
      r.createEmail.value = route.create_email || '';
      r.createPhone.value = route.create_phone || '';
      const policyFields = () => { r.holdField.hidden = r.unknown.value !== 'hold'; r.createFrom.hidden = r.unknown.value !== 'create'; };
      policyFields();
      r.unknown.addEventListener('change', policyFields);
      fillForEachSelect(r.forEachSel, route.for_each || '');
      ((route.mappings || []).length ? route.mappings : [null]).forEach((m) => addRow(r, m));
      fillFieldSelect(r.ident, (route.identify && route.identify.field) || '', r.forEach());
      refreshRoute(r);
      r.forEachSel.addEventListener('change', () => refreshRoute(r));
      r.event.addEventListener('change', () => refreshRoute(r));
      r.name.addEventListener('input', renumberCards);
      $('.r-add-mapping', li).addEventListener('click', () => { const row = addRow(r, null); $('.map-attr', row).focus(); });
      $('.route-up', li).addEventListener('click', () => moveCard(r, -1));
      $('.route-down', li).addEventListener('click', () => moveCard(r, 1));
      $('.route-remove', li).addEventListener('click', () => removeCard(r));
      renumberCards();
      return r;
    }
    function renumberCards() {
      cards.forEach((r, i) => {
        const n = i + 1;
        const name = r.name.value.trim();
        $('.route-title', r.el).textContent = 'Route ' + n + (name ? ' \u00b7 ' + name : '');
        r.el.dataset.index = String(i);
        const up = $('.route-up', r.el);
        const down = $('.route-down', r.el);
        const rm = $('.route-remove', r.el);
        up.setAttribute('aria-label', 'Move route ' + n + ' up');
        down.setAttribute('aria-label', 'Move route ' + n + ' down');
        rm.setAttribute('aria-label', 'Remove route ' + n);
        up.disabled = i === 0;
        down.disabled = i === cards.length - 1;
        rm.disabled = cards.length === 1;
        renumber(r);
      });
    }
    function moveCard(r, d) {
      const i = cards.indexOf(r);
      const j = i + d;
      if (j < 0 || j >= cards.length) return;
      cards.splice(i, 1);
      cards.splice(j, 0, r);
      if (d < 0) routesList.insertBefore(r.el, cards[j + 1].el); else routesList.insertBefore(r.el, cards[j - 1].el.nextSibling);
      renumberCards();
      // Focus stays on the moved route, on the button that can move it further (or the other one).
      const btn = $(d < 0 ? '.route-up' : '.route-down', r.el);
      (btn.disabled ? $(d < 0 ? '.route-down' : '.route-up', r.el) : btn).focus();
      $('#routes-status').textContent = 'Route moved to position ' + (j + 1) + '.';
    }
    function removeCard(r) {
      const i = cards.indexOf(r);
      if (cards.length === 1) return;
      r.el.remove();
      cards.splice(i, 1);
      renumberCards();
      $('.r-name', cards[Math.min(i, cards.length - 1)].el).focus();
    }
    // singlePolicyFields shows the simple form's fields of its unknown-user policy: hold's time, create's fields.
    function singlePolicyFields() {
      $('#wh-hold-for-field').hidden = $('#wh-unknown-user').value !== 'hold';
      $('#wh-create-from-field').hidden = $('#wh-unknown-user').value !== 'create';
    }
    // The simple form's route, for its card when the form turns into routes.
    function singleRoute() {
      return { event_id: Number(eventSel.value) || 0, identify: { kind: kindSel.value, field: identField.value }, mappings: mappingsOf(single).mappings,
        unknown_user: $('#wh-unknown-user').value, hold_for: $('#wh-unknown-user').value === 'hold' ? $('#wh-hold-for').value.trim() : '',
        create_email: $('#wh-unknown-user').value === 'create' ? $('#wh-create-email').value.trim() : '',
        create_phone: $('#wh-unknown-user').value === 'create' ? $('#wh-create-phone').value.trim() : '' };
    }
    function showRoutes(list) {
      $('#single-route').hidden = true;
      $('#event-field').hidden = true;
      $('#routes-head').hidden = false;
      routesList.hidden = false;
      $('#add-route-hint').hidden = true;
      list.forEach((rt) => addCard(rt));
    }
    $('#add-route').addEventListener('click', () => {
      if (!cards.length) showRoutes([singleRoute()]);
      const r = addCard(null);
      r.name.focus();
    });

    async function loadFields(announce) {
      const status = $('#fields-status');
      const err = $('#err-sample_payload');
      err.textContent = '';
      sample.removeAttribute('aria-invalid');
      const text = sample.value.trim();
      if (!text) { fields = []; refreshSelects(); status.textContent = ''; return; }
      try {
        const data = await api('POST', '/api/v1/sample-fields', text, { raw: true });
        fields = data.fields || [];
        const leaves = fields.filter((f) => f.type !== 'object').length;
        status.textContent = leaves + (leaves === 1 ? ' field loaded' : ' fields loaded') + ' into the dropdowns.';
        refreshSelects();
        if (announce) toast('Select options reloaded');
      } catch (e) {
        status.textContent = '';
        err.textContent = 'Not valid JSON: ' + ((e.fields[0] && e.fields[0].message) || e.message);
        sample.setAttribute('aria-invalid', 'true');
      }
    }

    function updateKindHint() { $('#identify-hint').textContent = KIND_HINTS[kindSel.value] || ''; }

    try {
      events = (await api('GET', '/api/v1/events')).events || [];
    } catch (e) { summary.textContent = e.message; summary.hidden = false; }
    fillEventSelect(eventSel);

    // The browser's list of IANA zones, as suggestions; the server checks the name.
    if (Intl.supportedValuesOf) {
      $('#time-zones').replaceChildren(...Intl.supportedValuesOf('timeZone').map((z) => el('option', { value: z })));
    }

    if (id) {
      current = await api('GET', '/api/v1/webhooks/' + encodeURIComponent(id));
      version = current.version;
      $('#wh-name').value = current.name;
      eventSel.value = String(current.event_id);
      sample.value = pretty(current.sample_payload);
      kindSel.value = current.identify.kind;
      $('#wh-unknown-user').value = unknownPolicy(current.unknown_user);
      $('#wh-hold-for').value = current.hold_for || '';
      $('#wh-create-email').value = current.create_email || '';
      $('#wh-create-phone').value = current.create_phone || '';
      singlePolicyFields();
      $('#wh-time-zone').value = current.time_zone && current.time_zone !== 'UTC' ? current.time_zone : '';
      const sens = current.sensitive || {};
      $('#wh-sensitive-fields').value = (sens.fields || []).join(', ');
      $('#wh-sensitive-headers').value = (sens.headers || []).join(', ');
      await loadFields(false);
      const rts = current.routes || [];
      if (rts.length > 1 || (rts[0] && (rts[0].name || rts[0].when || rts[0].for_each))) {
        showRoutes(rts);
      } else {
        fillFieldSelect(identField, current.identify.field);
        (current.mappings.length ? current.mappings : [null]).forEach((m) => addRow(single, m));
      }
      connect = await connectStep(current);
      refreshSelects();
    } else {
      connect = await connectStep(null);
      const pre = new URLSearchParams(location.search).get('event');
      const match = pre && events.find((e) => e.name === pre);
      if (match) eventSel.value = String(match.id);
      else if (events.length === 1) eventSel.value = String(events[0].id);
      addRow(single, null);
    }
    updateKindHint();

    connect.onChange(debounce(refreshSelects, 300));
    eventSel.addEventListener('change', () => refreshRoute(single));
    kindSel.addEventListener('change', updateKindHint);
    $('#wh-unknown-user').addEventListener('change', singlePolicyFields);
    sample.addEventListener('input', debounce(() => loadFields(false), 600));
    sample.addEventListener('paste', () => setTimeout(() => loadFields(false), 0));
    $('#reload-fields').addEventListener('click', () => loadFields(true));
    $('#add-mapping').addEventListener('click', () => { const r = addRow(single, null); $('.map-attr', r).focus(); });

    // The request body and what was sent from where, to place the errors: the simple form's rows, or
    // the cards and their rows.
    function collect() {
      const body = {
        name: $('#wh-name').value.trim(),
        sample_payload: sample.value.trim() ? compact(sample.value.trim()) : '',
        time_zone: $('#wh-time-zone').value.trim(),
        sensitive: {
          fields: $('#wh-sensitive-fields').value.split(',').map((s) => s.trim()).filter(Boolean),
          headers: nameList($('#wh-sensitive-headers').value),
        },
      };
      const sent = { rows: [], cards: [], cardRows: [] };
      if (cards.length) {
        body.routes = cards.map((r) => {
          const { mappings, sent: rowsSent } = mappingsOf(r);
          sent.cards.push(r);
          sent.cardRows.push(rowsSent);
          const rt = { identify: { kind: r.kind.value, field: r.ident.value }, mappings };
          if (r.name.value.trim()) rt.name = r.name.value.trim();
          if (r.when.value.trim()) rt.when = r.when.value.trim();
          if (r.forEachSel.value) rt.for_each = r.forEachSel.value;
          if (r.event.value) rt.event_id = Number(r.event.value);
          if (r.unknown.value !== 'fail') rt.unknown_user = r.unknown.value;
          if (r.unknown.value === 'hold' && r.holdFor.value.trim()) rt.hold_for = r.holdFor.value.trim();
          if (r.unknown.value === 'create' && r.createEmail.value.trim()) rt.create_email = r.createEmail.value.trim();
          if (r.unknown.value === 'create' && r.createPhone.value.trim()) rt.create_phone = r.createPhone.value.trim();
          return rt;
        });
      } else {
        const { mappings, sent: rowsSent } = mappingsOf(single);
        sent.rows = rowsSent;
        body.identify = { kind: kindSel.value, field: identField.value };
        body.mappings = mappings;
        // Sent as chosen, fail too: an edit must be able to turn create back off.
        body.unknown_user = $('#wh-unknown-user').value;
        // Sent empty too when waiting the default, so that an edit can clear it.
        if (body.unknown_user === 'hold') body.hold_for = $('#wh-hold-for').value.trim();
        // Sent empty too, so that an edit can clear them.
        if (body.unknown_user === 'create') {
          body.create_email = $('#wh-create-email').value.trim();
          body.create_phone = $('#wh-create-phone').value.trim();
        }
        if (eventSel.value) body.event_id = Number(eventSel.value);
      }
      Object.assign(body, connect.body());
      return { body, sent };
    }
    const ROW_CONTROLS = { attribute: '.map-attr', field: '.map-field', expr: '.map-expr', on_error: '.map-onerror' };
    // placeRouteError answers the control of an error of the single-route API (mappings[j].field) or of
    // routes (routes[i].mappings[j].expr, routes[i].when ...); the field error beside it gets the message.
    function placeRouteError(sent) {
      return (f) => {
        let m = /^mappings\[(\d+)\]\.(attribute|field|expr|on_error)$/.exec(f.field);
        if (m) return sent.rows[Number(m[1])] ? $(ROW_CONTROLS[m[2]], sent.rows[Number(m[1])]) : null;
        m = /^routes\[(\d+)\](?:\.(.+))?$/.exec(f.field);
        const r = m && sent.cards[Number(m[1])];
        if (!r) return null;
        const rest = m[2] || '';
        const ctl = { name: r.name, when: r.when, for_each: r.forEachSel, event: r.event, event_id: r.event,
          identify: r.ident, 'identify.kind': r.kind, 'identify.field': r.ident, unknown_user: r.unknown, hold_for: r.holdFor,
          create_email: r.createEmail, create_phone: r.createPhone }[rest];
        if (ctl) return ctl;
        const mm = /^mappings\[(\d+)\]\.(attribute|field|expr|on_error)$/.exec(rest);
        const row = mm && sent.cardRows[Number(m[1])][Number(mm[1])];
        if (row) return $(ROW_CONTROLS[mm[2]], row);
        return $('.r-mappings-error', r.el); // the route as a whole, or its mappings
      };
    }

    // The Test panel: a dry run of the sample payload with the form as it is (a draft of the saved
    // webhook, or an unsaved one), answered by the pipeline's own evaluation.
    $('#test-sample').addEventListener('click', async () => {
      const out = $('#test-result');
      const { body } = collect();
      const req = { body: sample.value };
      let ev;
      try {
        ev = current
          ? await api('POST', '/api/v1/webhooks/' + encodeURIComponent(current.id) + '/test', Object.assign(req, { draft: body }))
          : await api('POST', '/api/v1/webhooks/test', Object.assign(req, { webhook: body }));
      } catch (e) {
        const fields = e.fields.map((f) => f.field.replace(/^(webhook|draft)\./, '') + ': ' + f.message);
        out.replaceChildren(el('p', { class: 'field-error test-error' }, fields.length ? fields.join('; ') : e.message));
        out.hidden = false;
        return;
      }
      out.replaceChildren(...evaluationView(ev, cards.length > 0));
      out.hidden = false;
    });

    // Backtest: the form as it is over the webhook's newest recorded requests, beside what happened.
    const bt = $('#backtest');
    if (bt) {
      bt.addEventListener('click', async () => {
        const out = $('#backtest-result');
        bt.disabled = true;
        let res;
        try {
          res = await api('POST', '/api/v1/webhooks/' + encodeURIComponent(current.id) + '/backtest', { draft: collect().body });
        } catch (e) {
          const fields = e.fields.map((f) => f.field.replace(/^draft\./, '') + ': ' + f.message);
          out.replaceChildren(el('p', { class: 'field-error test-error' }, fields.length ? fields.join('; ') : e.message));
          out.hidden = false;
          return;
        } finally {
          bt.disabled = false;
        }
        out.replaceChildren(...backtestView(res));
        out.hidden = false;
      });
    }

    async function save(enable) {
      summary.hidden = true;
      clearErrors(form);
      const { body, sent } = collect();
      const renews = connect.renews();
      const buttons = $$('.form-actions button', form);
      buttons.forEach((b) => { b.disabled = true; });
      try {
        let creds = null;
        let w;
        if (!id && !current) {
          w = await api('POST', '/api/v1/webhooks', body);
          creds = w.credentials; // absent when the secret was pasted: read below
          current = w;
        } else {
          w = await api('PATCH', '/api/v1/webhooks/' + encodeURIComponent(current.id), body, { ifMatch: version });
          current = w;
        }
        connect.saved(w);
        version = w.version;
        if (enable) {
          w = await api('POST', '/api/v1/webhooks/' + encodeURIComponent(current.id) + '/enable', undefined, { ifMatch: version });
          version = w.version;
        }
        if (enable || renews) {
          // New credentials (or a webhook about to receive requests): the window says what to paste
          // where, and how to test it.
          if (!creds) creds = await api('GET', '/api/v1/webhooks/' + encodeURIComponent(current.id) + '/credentials');
          await showCredentials(creds, () => { location.href = '/webhooks'; });
        } else {
          toast('Webhook saved');
          location.href = '/webhooks';
        }
      } catch (e) {
        if (e.status === 412) {
          showErrors(form, summary, new APIError(412, { detail: 'Someone else changed this webhook meanwhile. Reload the page to see their changes.' }));
        } else {
          const place = placeRouteError(sent);
          showErrors(form, summary, e, (f) => place(f) || connect.place(f));
        }
      } finally {
        buttons.forEach((b) => { b.disabled = false; });
      }
    }
    form.addEventListener('submit', (ev) => { ev.preventDefault(); save(false); });
    const en = $('#enable-webhook');
    if (en) en.addEventListener('click', () => save(true));
  }

  // ---- Test panel and backtest views --------------------------------------------------------------

  const OUTCOMES = { success: ['Success', 'badge-success'], failed: ['Failed', 'badge-failed'], skipped: ['Skipped', 'badge-skipped'], duplicate: ['Duplicate', 'badge-duplicate'], held: ['Waiting for user', 'badge-held'] };
  const outcomeBadge = (status) => {
    const [label, cls] = OUTCOMES[status] || [status, 'badge-failed'];
    return el('span', { class: 'badge ' + cls }, label);
  };
  const routeLabel = (i, name) => (i < 0 ? 'none' : 'Route ' + (i + 1) + (name ? ' \u00b7 ' + name : ''));
  const whoOf = (id) => (id.found ? 'found' + (id.user_id && id.user_id !== id.value ? ' (user ' + id.user_id + ')' : '')
    : id.would_create ? 'not found, would be created' + (id.user_id && id.user_id !== id.value ? ' (user ' + id.user_id + ')' : '') +
        (id.email || id.phone ? ' with ' + [id.email, id.phone].filter(Boolean).join(', ') : '')
      : id.value ? 'not found' : 'not read');
  const attrValue = (a) => (a.outcome === 'mapped' ? JSON.stringify(a.value) : a.outcome + (a.message ? ': ' + a.message : ''));

  // evaluationView lays out a dry run's Evaluation: the outcome, the route that took the request and
  // the conditions tried, then the single event's user and attributes, or a fan-out's elements.
  function evaluationView(ev, routed) {
    const ok = ev.status === 'success';
    const conds = ev.conditions || [];
    const elements = ev.elements || [];
    const fanOut = elements.length > 0 || ev.reason === 'no_elements';
    const id = ev.identification || {};
    let what = ' ' + reasonLabel(ev.reason);
    if (ok) what = ' fires ' + ev.event_name + (fanOut ? ' \u00d7 ' + ev.events_fired : '');
    else if (ev.status === 'failed' && ev.events_fired > 0) what += ' (' + ev.events_fired + ' of ' + elements.length + ' events fired)';
    return [
      el('p', { class: 'test-outcome' }, outcomeBadge(ev.status), what),
      routed || conds.length || ev.route_name ? el('p', { class: 'test-route' }, 'Route: ', el('b', {}, routeLabel(ev.route, ev.route_name))) : null,
      conds.length ? el('ol', { class: 'test-conditions', 'aria-label': 'Conditions tried' }, conds.map((c) => el('li', { dataset: { matched: String(c.matched) } },
        el('span', {}, routeLabel(c.route, c.name)), ' ', el('code', {}, c.when || 'always'), ' \u2192 ',
        c.error ? el('span', { class: 'cond-error' }, 'error: ' + c.error) : el('span', { class: c.matched ? 'cond-yes' : 'cond-no' }, c.matched ? 'holds' : 'does not hold')))) : null,
      !fanOut && id.kind && ev.route >= 0 ? el('p', { class: 'test-identify' }, 'User ' + (id.value ? id.value + ' ' : '') + '(' + id.kind + ' from ' + id.field + '): ' + whoOf(id)) : null,
      ev.detail ? el('p', { class: 'hint test-detail' }, ev.detail) : null,
      !fanOut && (ev.attributes || []).length ? el('table', { class: 'test-attrs' },
        el('thead', {}, el('tr', {}, el('th', {}, 'Attribute'), el('th', {}, 'Value'))),
        el('tbody', {}, ev.attributes.map((a) => el('tr', { dataset: { outcome: a.outcome } },
          el('td', {}, a.attribute + ' (' + a.type + ')'),
          el('td', { class: a.outcome === 'mapped' ? 'mono' : 'hint' }, attrValue(a)))))) : null,
      elements.length ? el('table', { class: 'test-attrs test-elements' },
        el('caption', { class: 'sr-only' }, 'Elements of the fan-out'),
        el('thead', {}, el('tr', {}, el('th', {}, '#'), el('th', {}, 'Status'), el('th', {}, 'User'), el('th', {}, 'Attributes'))),
        el('tbody', {}, elements.map((x) => {
          const xid = x.identification || {};
          return el('tr', { dataset: { index: String(x.index), status: x.status } },
            el('td', { class: 'mono' }, String(x.index)),
            el('td', {}, outcomeBadge(x.status), x.reason ? el('div', { class: 'hint' }, reasonLabel(x.reason)) : null),
            el('td', {}, (xid.value || '\u2014') + ' ', el('span', { class: 'hint' }, '(' + xid.kind + ' from ' + xid.field + '): ' + whoOf(xid))),
            el('td', { class: 'mono' }, (x.attributes || []).map((a) => el('div', { dataset: { outcome: a.outcome } }, a.attribute + ' = ' + attrValue(a))),
              x.detail ? el('div', { class: 'hint' }, x.detail) : null));
        }))) : null,
    ].filter(Boolean); // replaceChildren would write a null as text
  }

  // backtestView lays out a Backtest: what happened to the newest requests and what the form would
  // make of them, by status (skipped apart from failures), and the requests whose outcome changes.
  function backtestView(b) {
    if (!b.read) return [el('p', { class: 'backtest-empty' }, 'No recorded requests to backtest yet: send requests to the webhook first.')];
    return [
      el('p', { class: 'backtest-read' }, fmtNum(b.evaluated) + ' of the ' + fmtNum(b.read) + ' newest requests evaluated' +
        (b.changed ? '; ' + fmtNum(b.changed) + ' would change.' : '; none would change.')),
      el('table', { class: 'test-attrs backtest-counts' },
        el('thead', {}, el('tr', {}, el('th', {}, ''), el('th', {}, 'Success'), el('th', {}, 'Failed'), el('th', {}, 'Skipped'))),
        el('tbody', {}, [['What happened', b.actual], ['With this form', b.result]].map(([label, c]) => el('tr', {},
          el('th', { scope: 'row' }, label), el('td', {}, fmtNum(c.success)), el('td', {}, fmtNum(c.failed)), el('td', {}, fmtNum(c.skipped || 0)))))),
      (b.examples || []).length ? el('ul', { class: 'backtest-examples' }, b.examples.map((x) => el('li', {},
        el('span', { class: 'mono' }, x.request_id.slice(0, 8)), ' ', outcomeBadge(x.before.status), x.before.status !== 'success' ? ' ' + reasonLabel(x.before.reason) : '', ' \u2192 ',
        outcomeBadge(x.after.status), x.after.status !== 'success' ? ' ' + reasonLabel(x.after.reason) : '',
        x.after.route ? ' (route ' + x.after.route + ')' : ''))) : null,
      (b.notes || []).length ? el('ul', { class: 'hint backtest-notes' }, b.notes.map((n) => el('li', {}, n))) : null,
    ].filter(Boolean);
  }

  // ---- activity log -------------------------------------------------------------------------------

  function activityPage() {
    const id = document.body.dataset.webhookId;
    const base = '/api/v1/webhooks/' + encodeURIComponent(id);
    const list = $('#entries');
    const more = $('#load-more');
    const search = $('#identifier-search');
    let cursor = '';
    let seq = 0;

    async function summary() {
      try {
        const s = (await api('GET', base + '/summary')).summary;
        $('#sum-hits').textContent = fmtNum(s.hits);
        $('#sum-success').textContent = fmtNum(s.success);
        $('#sum-failed').textContent = fmtNum(s.failed);
        $('#sum-duplicate').textContent = fmtNum(s.duplicate);
        $('#sum-skipped').textContent = fmtNum(s.skipped);
        $('#sum-held').textContent = fmtNum(s.held || 0);
        const skips = Object.entries(s.skipped_by_reason || {}).sort((a, b) => b[1] - a[1]);
        $('#sum-skipped-reasons').textContent = skips.length ? skips.map(([r, n]) => reasonLabel(r).toLowerCase() + ': ' + fmtNum(n)).join(', ') : 'no route, no elements';
        const reasons = Object.entries(s.failed_by_reason || {}).sort((a, b) => b[1] - a[1]);
        $('#sum-reasons').replaceChildren(...(reasons.length
          ? reasons.map(([r, n]) => el('li', { title: REASONS[r] ? REASONS[r][1] : '' }, el('span', {}, reasonLabel(r)), el('b', {}, fmtNum(n))))
          : [el('li', { class: 'muted' }, 'No failures')]));
      } catch (e) { toast(e.message); }
    }

    const STATUS = { success: ['Success', 'badge-success'], failed: ['Failed', 'badge-failed'], duplicate: ['Duplicate', 'badge-duplicate'], skipped: ['Skipped', 'badge-skipped'], held: ['Waiting for user', 'badge-held'] };
    const firedWords = (n) => fmtNum(n) + (n === 1 ? ' event fired' : ' events fired');

    // firstLink links a duplicate to the first request of its delivery: to its entry when it is on the
    // page (scrolled to and opened), else to its details, fetched and shown in place of the link.
    function firstLink(e) {
      const a = el('a', { href: '#req-' + e.duplicate_of, class: 'dup-link', title: 'The first request of this delivery' }, e.duplicate_of);
      a.addEventListener('click', async (ev) => {
        ev.preventDefault();
        const row = list.querySelector(':scope > li[data-request-id="' + e.duplicate_of + '"]');
        if (row) {
          row.scrollIntoView({ block: 'center' });
          row.classList.add('flash');
          setTimeout(() => row.classList.remove('flash'), 1500);
          const show = $('.entry-head .btn', row);
          if (show && show.getAttribute('aria-expanded') !== 'true') show.click();
          return;
        }
        try {
          const first = await api('GET', base + '/activity/' + encodeURIComponent(e.duplicate_of));
          a.replaceWith(el('div', { class: 'first-request' }, entry(first, true)));
        } catch (err) { toast(err.message); }
      });
      return a;
    }

    // entry renders one activity entry; inline ones (a first request shown inside its duplicate) have
    // no id of their own.
    function entry(e, inline) {
      const later = !inline && laterAttempt(e);
      const ok = e.status === 'success';
      const dup = e.status === 'duplicate';
      const skipped = e.status === 'skipped' || e.status === 'held';
      const fanOut = Array.isArray(e.outcomes) && e.outcomes.length > 0;
      const [label, badge] = STATUS[e.status] || [e.status, 'badge-failed'];
      const ident = e.identifier_value
        ? el('span', { class: 'entry-id' }, el('span', { class: 'kind' }, (KINDS[e.identifier_kind] || e.identifier_kind) + ': '), e.identifier_value)
        : el('span', { class: 'entry-id muted' }, 'No identifier');
      const details = el('div', { class: 'entry-details', hidden: true });
      const show = el('button', { type: 'button', class: 'btn btn-ghost btn-sm', 'aria-expanded': 'false' }, 'Show');
      show.addEventListener('click', async () => {
        const open = show.getAttribute('aria-expanded') === 'true';
        if (open) { details.hidden = true; show.setAttribute('aria-expanded', 'false'); show.textContent = 'Show'; return; }
        if (!details.dataset.loaded) {
          try {
            const full = await api('GET', base + '/activity/' + encodeURIComponent(e.request_id));
            details.replaceChildren(...detailsOf(full));
            details.dataset.loaded = '1';
          } catch (err) { toast(err.message); return; }
        }
        details.hidden = false;
        show.setAttribute('aria-expanded', 'true');
        show.textContent = 'Hide';
      });
      const preview = e.payload_bytes === 0 && !e.payload ? '(no payload kept)' : compact(e.payload) + (e.payload_truncated || (e.payload && e.payload.length < e.payload_bytes) ? ' \u2026' : '');
      return el(inline ? 'div' : 'li', { class: 'entry', id: inline ? null : 'req-' + e.request_id, dataset: { requestId: e.request_id, status: e.status } },
        el('div', { class: 'entry-head' }, ident,
          el('span', { class: 'badge ' + badge }, label),
          ok || dup ? null : el('span', { class: 'entry-reason' + (skipped ? ' skipped' : ''), title: REASONS[e.reason] ? REASONS[e.reason][1] : null }, reasonLabel(e.reason)),
          e.route ? el('span', { class: 'entry-route', title: 'The route that took the request' }, 'Route ', el('b', {}, e.route)) : null,
          fanOut || e.events_fired > 1 || (e.status === 'failed' && e.events_fired > 0) ? el('span', { class: 'entry-fired' }, firedWords(e.events_fired)) : null,
          dup && e.duplicate_of ? el('span', { class: 'entry-dup' }, 'Duplicate of ', firstLink(e)) : null,
          e.attempt > 0 ? el('span', { class: 'entry-attempt', title: 'A later attempt of this request' + (e.replaces_status ? '; it was ' + e.replaces_status + (e.replaces_reason ? ' (' + reasonLabel(e.replaces_reason).toLowerCase() + ')' : '') + ' before' : '') }, attemptWords(e)) : null,
          el('time', { class: 'entry-time', datetime: e.received_at }, fmtTime(e.received_at)),
          show,
          !inline && e.status === 'failed' && e.edge_status === 202 && !later ? replayButton(e) : null),
        el('div', { class: 'entry-preview', title: 'Payload preview' }, preview),
        details);
    }

    // laterAttempt tells whether the list already shows a later attempt of e's request (attempts come
    // latest first): then e is not its latest outcome, and offers no Replay.
    let listed = new Set();
    function laterAttempt(e) {
      const seen = listed.has(e.request_id);
      listed.add(e.request_id);
      return seen;
    }

    function attemptWords(e) {
      const why = { replay: 'replay', release: 'user appeared', expire: 'hold ran out' }[e.attempt_cause] || e.attempt_cause;
      return 'Attempt ' + (e.attempt + 1) + (why ? ' \u00b7 ' + why : '');
    }

    // replayButton replays one failed entry: a job of one request, followed until the pipeline has run
    // it; then the summary and the list are read again.
    function replayButton(e) {
      const b = el('button', { type: 'button', class: 'btn btn-secondary btn-sm replay-one', title: 'Run this request again through the current settings' }, 'Replay');
      b.addEventListener('click', async () => {
        b.disabled = true;
        b.textContent = 'Replaying\u2026';
        try {
          const job = await api('POST', base + '/activity/' + encodeURIComponent(e.request_id) + '/replay');
          const end = await followJob(job, () => {});
          toast(end.succeeded > 0 ? 'Replayed: the request succeeded.' : end.failed_again > 0 ? 'Replayed: the request failed again.' : replayResult(end));
          summary();
          load(true);
        } catch (err) {
          toast(err.message);
          b.disabled = false;
          b.textContent = 'Replay';
        }
      });
      return b;
    }

    // followJob reads a replay job every second until it has ended and the pipeline has run what it
    // produced (or 60 s have passed since it ended), calling onJob with each reading.
    async function followJob(job, onJob) {
      let endedAt = 0;
      for (;;) {
        onJob(job);
        const ended = job.state === 'done' || job.state === 'cancelled' || job.state === 'failed';
        if (ended && !endedAt) endedAt = Date.now();
        if (ended && (job.succeeded + job.failed_again >= job.produced || Date.now() - endedAt > 60000)) return job;
        await new Promise((r) => setTimeout(r, 1000));
        job = await api('GET', '/api/v1/replays/' + encodeURIComponent(job.id));
      }
    }

    function replayResult(j) {
      const parts = [fmtNum(j.succeeded) + ' succeeded', fmtNum(j.failed_again) + ' failed again'];
      if (j.expired) parts.push(fmtNum(j.expired) + ' too old to replay (past the retention of the request log)');
      if (j.truncated) parts.push(fmtNum(j.truncated) + ' not replayed (only a preview of the body was kept)');
      if (j.skipped) parts.push(fmtNum(j.skipped) + ' skipped (another replay of them is running)');
      return parts.join(', ') + '.';
    }

    // The "Replay failed…" window: a filter, its count, then the job's progress and result.
    const rd = $('#replay-dialog');
    if (rd) {
      const since = $('#replay-since'), until = $('#replay-until'), reason = $('#replay-reason');
      const start = $('#replay-start'), cancelBtn = $('#replay-cancel'), count = $('#replay-count');
      const toInput = (d) => d.toISOString().slice(0, 19);
      const fromInput = (v) => new Date(v + 'Z').toISOString();
      let running = null;
      const filter = () => {
        const f = { webhook_id: id, since: fromInput(since.value), until: fromInput(until.value) };
        if (reason.value) f.reason = reason.value;
        return f;
      };
      const recount = debounce(async () => {
        $('#replay-error').textContent = '';
        start.disabled = true;
        if (!since.value || !until.value) { count.textContent = ''; return; }
        try {
          const r = await api('POST', '/api/v1/replays?dry_run=1', filter());
          count.textContent = r.count === 1 ? '1 failed request will be replayed.' : fmtNum(r.count) + ' failed requests will be replayed.';
          start.disabled = r.count === 0 || !!running;
        } catch (e) { $('#replay-error').textContent = e.message; count.textContent = ''; }
      }, 250);
      [since, until, reason].forEach((x) => x.addEventListener('change', recount));
      $('#replay-open').addEventListener('click', async () => {
        const now = new Date();
        if (!until.value) until.value = toInput(new Date(now.getTime() + 60000));
        if (!since.value) since.value = toInput(new Date(now.getTime() - 24 * 3600 * 1000));
        try {
          const s = (await api('GET', base + '/summary')).summary;
          const known = new Set([...reason.options].map((o) => o.value));
          Object.keys(s.failed_by_reason || {}).filter((r) => !known.has(r) && !EDGE_REASONS.has(r))
            .forEach((r) => reason.append(el('option', { value: r }, reasonLabel(r))));
        } catch (e) { toast(e.message); }
        rd.showModal();
        recount();
      });
      start.addEventListener('click', async () => {
        start.disabled = true;
        $('#replay-progress').hidden = false;
        cancelBtn.hidden = false;
        try {
          running = await api('POST', '/api/v1/replays', filter());
          const end = await followJob(running, (j) => {
            running = j;
            const doneN = j.succeeded + j.failed_again + j.expired + j.truncated + j.skipped;
            $('#replay-bar').max = Math.max(j.total, 1);
            $('#replay-bar').value = Math.min(doneN, j.total);
            $('#replay-status').textContent = (j.state === 'cancelled' ? 'Cancelled. ' : '') + fmtNum(j.produced) + ' of ' + fmtNum(j.total) + ' sent again; ' + replayResult(j);
          });
          $('#replay-status').textContent = (end.state === 'cancelled' ? 'Cancelled: ' : 'Done: ') + replayResult(end);
          summary();
          load(true);
        } catch (e) { $('#replay-error').textContent = e.message; }
        running = null;
        cancelBtn.hidden = true;
      });
      cancelBtn.addEventListener('click', async () => {
        if (!running) return;
        try { running = await api('POST', '/api/v1/replays/' + encodeURIComponent(running.id) + '/cancel'); } catch (e) { toast(e.message); }
      });
    }

    // headersOf lists the sender headers an entry was sent with (the ones the webhook keeps).
    function headersOf(h) {
      const names = Object.keys(h || {});
      if (!names.length) return null;
      return [el('h4', {}, 'Sender headers'),
        el('dl', { class: 'kv sender-headers' }, names.flatMap((n) => [el('dt', {}, n), el('dd', {}, h[n])]))];
    }

    // outcomesOf lays out a fan-out's per-element outcomes as a small table.
    function outcomesOf(e) {
      const list = Array.isArray(e.outcomes) ? e.outcomes : [];
      if (!list.length) return null;
      return [el('h4', {}, 'Elements' + (e.event_name ? ' \u00b7 ' + e.event_name : '')),
        el('table', { class: 'outcomes' },
          el('thead', {}, el('tr', {}, el('th', {}, '#'), el('th', {}, 'Status'), el('th', {}, 'Identifier'), el('th', {}, 'Attributes'))),
          el('tbody', {}, list.map((o) => el('tr', { dataset: { index: String(o.index), status: o.status } },
            el('td', { class: 'mono' }, String(o.index)),
            el('td', {}, el('span', { class: 'badge ' + (o.status === 'success' ? 'badge-success' : 'badge-failed') }, o.status === 'success' ? 'Success' : 'Failed'),
              o.reason ? el('div', { class: 'hint' }, reasonLabel(o.reason)) : null, o.detail ? el('div', { class: 'hint' }, o.detail) : null),
            el('td', {}, o.identifier || '\u2014', o.user_id ? el('div', { class: 'hint' }, 'user ' + o.user_id) : null),
            el('td', { class: 'mono' }, o.attributes ? JSON.stringify(o.attributes) : '\u2014')))))];
    }

    function detailsOf(e) {
      const [label] = STATUS[e.status] || [e.status];
      const kv = el('dl', { class: 'kv' },
        el('dt', {}, 'Request ID'), el('dd', { class: 'mono' }, e.request_id),
        el('dt', {}, 'Received'), el('dd', {}, fmtTime(e.received_at)),
        el('dt', {}, 'Processed'), el('dd', {}, e.processed_at && !e.processed_at.startsWith('1970') ? fmtTime(e.processed_at) : '\u2014'),
        el('dt', {}, 'HTTP answer'), el('dd', {}, String(e.edge_status || '')),
        el('dt', {}, 'Status'), el('dd', {}, label),
        e.route ? [el('dt', {}, 'Route'), el('dd', { class: 'detail-route mono' }, e.route)] : null,
        e.events_fired || Array.isArray(e.outcomes) ? [el('dt', {}, 'Events fired'), el('dd', { class: 'detail-fired' }, fmtNum(e.events_fired))] : null,
        e.duplicate_of ? [el('dt', {}, 'Duplicate of'), el('dd', { class: 'detail-duplicate' }, firstLink(e))] : null,
        e.reason ? [el('dt', {}, 'Reason'), el('dd', { class: 'detail-reason' }, reasonLabel(e.reason) + (REASONS[e.reason] ? ' \u2014 ' + REASONS[e.reason][1] : ''))] : null,
        e.detail ? [el('dt', {}, 'Detail'), el('dd', { class: 'detail-text' }, el('span', { class: 'detail-raw' }, e.detail),
          resultWords(e.detail) ? el('span', { class: 'detail-words' }, ' \u2014 ' + resultWords(e.detail)) : null)] : null,
        e.user_id ? [el('dt', {}, 'User'), el('dd', {}, el('a', { href: '/users?kind=user_id&value=' + encodeURIComponent(e.user_id) }, e.user_id))] : null,
        e.hwid ? [el('dt', {}, 'Device'), el('dd', {}, el('a', { href: '/users?kind=hwid&value=' + encodeURIComponent(e.hwid) }, e.hwid))] : null,
        el('dt', {}, 'Size'), el('dd', {}, fmtNum(e.payload_bytes) + ' bytes' + (e.payload_truncated ? ' (truncated)' : '')));
      const left = el('div', {}, el('h4', {}, 'Request'), kv, headersOf(e.headers), outcomesOf(e),
        e.event_name && e.status !== 'duplicate' && !Array.isArray(e.outcomes) ? [el('h4', {}, 'Fired event \u00b7 ' + e.event_name), el('pre', { class: 'code light fired-attributes' }, pretty(e.attributes))] : null,
        e.event_name && e.status === 'duplicate' ? el('p', { class: 'muted' }, 'No event fired: the first request of this delivery fired ' + e.event_name + '.') : null);
      const right = el('div', {}, el('h4', {}, 'Payload'), el('pre', { class: 'code full-payload', tabindex: '0' }, pretty(e.payload) || '(no payload kept)'));
      return [left, right];
    }

    async function load(reset) {
      const my = ++seq;
      if (reset) cursor = '';
      const p = new URLSearchParams({ limit: '20' });
      const status = $('#activity-filter input:checked').value;
      if (status) p.set('status', status);
      const ident = search.value.trim();
      if (ident) p.set('identifier', ident);
      if (cursor) p.set('cursor', cursor);
      let page;
      try { page = await api('GET', base + '/activity?' + p); } catch (e) { toast(e.message); return; }
      if (my !== seq) return; // a newer load replaced this one
      if (reset) listed = new Set();
      const items = (page.entries || []).map((e) => entry(e));
      if (reset) list.replaceChildren(...items); else list.append(...items);
      cursor = page.next_cursor || '';
      more.hidden = !cursor;
      $('#entries-empty').hidden = list.children.length > 0;
    }

    more.addEventListener('click', () => load(false));
    search.addEventListener('input', debounce(() => load(true), 300));
    $$('#activity-filter input').forEach((r) => r.addEventListener('change', () => load(true)));
    $('#refresh-activity').addEventListener('click', () => { summary(); load(true); });
    const rotate = $('#rotate-secret');
    if (rotate) {
      rotate.addEventListener('click', async () => {
        const ok = await confirmDialog('Rotate the secret?', 'A new secret is made and the current one stops working at once. Paste the new one into your external service.', 'Rotate secret');
        if (!ok) return;
        try {
          showCredentials(await api('POST', base + '/rotate-secret', {}), () => location.reload());
        } catch (e) { toast(e.message); }
      });
    }
    summary();
    load(true);
  }

  // ---- User Explorer ------------------------------------------------------------------------------

  function usersPage() {
    const form = $('#lookup-form');
    const kind = $('#lookup-kind');
    const value = $('#lookup-value');
    const errBox = $('#lookup-error');
    const history = $('#history');
    const moreBtn = $('#history-more');
    let subject = null; // {path, label}
    let cursor = ''; // next_cursor of the last page shown: where Load more goes on
    let historySeq = 0;

    const params = new URLSearchParams(location.search);
    if (params.get('kind') && KINDS[params.get('kind')]) kind.value = params.get('kind');
    if (params.get('value')) value.value = params.get('value');

    function historyItem(ev) {
      const pre = el('pre', { class: 'code light attributes', hidden: true }, pretty(ev.attributes));
      const btn = el('button', { type: 'button', 'aria-expanded': 'false' },
        el('span', { class: 'caret', 'aria-hidden': 'true' }, '\u25b8'),
        el('span', { class: 'ev-name' }, ev.event_name),
        ev.hwid ? el('span', { class: 'chip' }, ev.hwid) : null,
        el('time', { class: 'ev-time', datetime: ev.occurred_at }, fmtTime(ev.occurred_at)));
      btn.addEventListener('click', () => {
        const open = btn.getAttribute('aria-expanded') === 'true';
        btn.setAttribute('aria-expanded', String(!open));
        pre.hidden = open;
      });
      return el('li', { class: 'history-item', dataset: { eventId: ev.event_id } }, btn, pre);
    }

    // The API's cursor is the exact position after the last event shown, so Load more neither skips nor
    // repeats events that share a second or a millisecond; the button shows while the API says there
    // are more. A load made stale by a newer one (another subject, a second click) is dropped.
    async function loadHistory(reset) {
      if (!subject) return;
      const my = ++historySeq;
      if (reset) { cursor = ''; moreBtn.hidden = true; history.replaceChildren(); }
      const p = new URLSearchParams({ limit: '50' });
      if (cursor) p.set('cursor', cursor);
      const data = await api('GET', subject.path + '?' + p);
      if (my !== historySeq) return;
      history.append(...(data.events || []).map(historyItem));
      if (!history.children.length) history.append(el('li', { class: 'muted empty-history' }, 'No events yet.'));
      cursor = data.next_cursor || '';
      moreBtn.hidden = !cursor;
    }

    function showDevices(devs, focusHwid) {
      $('#devices-body').replaceChildren(...(devs.length ? devs.map((d) => el('tr', {},
        el('td', { class: 'mono' }, d.hwid, d.hwid === focusHwid ? [' ', el('span', { class: 'badge badge-on' }, 'matched')] : null),
        el('td', {}, d.platform || '\u2014'),
        el('td', {}, fmtTime(d.updated_at)),
        el('td', { class: 'actions' }, el('button', {
          type: 'button', class: 'btn btn-secondary btn-sm',
          onclick: () => selectSubject('/api/v1/devices/' + encodeURIComponent(d.hwid) + '/events', 'Events of device ' + d.hwid),
        }, 'Events history'))))
        : [el('tr', {}, el('td', { colspan: 4, class: 'muted' }, 'No devices.'))]));
    }

    async function selectSubject(path, label) {
      subject = { path, label };
      $('#history-subject').textContent = label;
      try { await loadHistory(true); } catch (e) { toast(e.message); }
    }

    let lookupSeq = 0;
    async function lookup() {
      const my = ++lookupSeq; // a newer lookup makes this one's answers irrelevant
      errBox.hidden = true;
      $('#profile').hidden = true;
      const k = kind.value;
      const v = value.value.trim();
      if (!v) return;
      window.history.replaceState(null, '', '/users?' + new URLSearchParams({ kind: k, value: v }));
      let prof;
      try {
        prof = await api('GET', '/api/v1/lookup?' + new URLSearchParams({ kind: k, value: v }));
        if (my !== lookupSeq) return;
      } catch (e) {
        if (my !== lookupSeq) return;
        errBox.textContent = e.status === 404 ? 'No ' + (k === 'hwid' ? 'device' : 'user') + ' with ' + KINDS[k] + ' \u201c' + v + '\u201d in this project.'
          : (e.fields[0] ? e.fields[0].message : e.message);
        errBox.hidden = false;
        return;
      }
      let user = prof.user || null;
      let devices = [];
      if (prof.user_id) {
        try {
          const u = await api('GET', '/api/v1/users/' + encodeURIComponent(prof.user_id));
          if (my !== lookupSeq) return;
          user = u;
          devices = u.devices || [];
        } catch (e) {
          if (my !== lookupSeq) return;
          devices = (prof.hwids || []).map((h) => ({ hwid: h }));
        }
      } else if (prof.device) {
        devices = [prof.device];
      }
      const card = $('#profile-card');
      const cell = (label, val) => el('div', {}, el('span', {}, label), val || '\u2014');
      const subjectPath = prof.user_id ? '/api/v1/users/' + encodeURIComponent(prof.user_id) : '/api/v1/devices/' + encodeURIComponent(prof.device.hwid);
      const subjectLabel = prof.user_id ? 'user ' + prof.user_id : 'device ' + prof.device.hwid;
      card.replaceChildren(
        el('div', { class: 'page-head' },
          el('h2', {}, prof.user_id ? 'User ' + prof.user_id : 'Anonymous device ' + prof.device.hwid),
          el('button', { type: 'button', class: 'btn btn-danger btn-sm', id: 'erase-subject', onclick: () => eraseSubject(subjectPath, subjectLabel) }, 'Delete and erase')),
        el('div', { class: 'profile-grid' },
          cell('User ID', prof.user_id),
          cell('Email', user && user.email),
          cell('Phone', user && user.phone),
          prof.device ? cell('Matched device', prof.device.hwid + (prof.device.platform ? ' (' + prof.device.platform + ')' : '')) : cell('Devices', String(devices.length))));
      showDevices(devices, prof.device && prof.device.hwid);
      $('#profile').hidden = false;
      if (k === 'hwid' && prof.device) {
        await selectSubject('/api/v1/devices/' + encodeURIComponent(prof.device.hwid) + '/events', 'Events of device ' + prof.device.hwid);
      } else {
        await selectSubject('/api/v1/users/' + encodeURIComponent(prof.user_id) + '/events', 'Events of user ' + prof.user_id);
      }
    }

    // eraseSubject deletes the user or device and follows its erasure job until it is done or failed.
    async function eraseSubject(path, label) {
      const text = 'This deletes ' + label + ' from the directory and erases its payloads, identifiers and events from the activity log. Counts stay. It cannot be undone.';
      if (!(await confirmDialog('Delete and erase ' + label + '?', text, 'Delete and erase'))) return;
      let job;
      try { job = await api('DELETE', path); } catch (e) { toast(e.message); return; }
      $('#profile').hidden = true;
      const box = $('#erasure-status');
      const show = (j) => box.replaceChildren('Erasure of ' + label + ': ', erasureBadge(j), j.error ? ' ' + j.error : '');
      show(job);
      box.hidden = false;
      while (job.status === 'pending' || job.status === 'running') {
        await new Promise((r) => setTimeout(r, 1000));
        try { job = await api('GET', '/api/v1/erasures/' + job.id); } catch (e) { toast(e.message); return; }
        show(job);
      }
    }

    form.addEventListener('submit', (ev) => { ev.preventDefault(); $('#erasure-status').hidden = true; lookup(); });
    kind.addEventListener('change', () => {
      value.placeholder = { user_id: '12345', email: 'jane@example.com', phone: '+15551234567', hwid: 'device hwid' }[kind.value];
    });
    moreBtn.addEventListener('click', () => loadHistory(false).catch((e) => toast(e.message)));
    if (value.value) lookup();
  }

  // ---- Events catalog -----------------------------------------------------------------------------

  function eventsPage() {
    const editor = $('#event-editor');
    const form = $('#event-form');
    const rows = $('#attr-rows');
    const errBox = $('#event-error');
    let editing = null; // the event being edited, or null for a new one

    function addAttr(a) {
      const r = $('#attr-row').content.firstElementChild.cloneNode(true);
      rows.append(r);
      $('.attr-name', r).value = a ? a.name : '';
      $('.attr-type', r).value = a ? a.type : 'string';
      $('.attr-remove', r).addEventListener('click', () => { r.remove(); renumber(); });
      renumber();
      return r;
    }
    function renumber() {
      $$('.attr-row', rows).forEach((r, i) => {
        $('.attr-name', r).setAttribute('aria-label', 'Attribute ' + (i + 1) + ' name');
        $('.attr-type', r).setAttribute('aria-label', 'Attribute ' + (i + 1) + ' type');
        $('.attr-remove', r).setAttribute('aria-label', 'Remove attribute ' + (i + 1));
      });
    }
    function open(ev) {
      editing = ev || null;
      clearErrors(form);
      errBox.hidden = true;
      $('#event-editor-title').textContent = ev ? 'Edit event ' + ev.name : 'Create event';
      $('#ev-name').value = ev ? ev.name : '';
      $('#ev-description').value = ev ? ev.description || '' : '';
      rows.replaceChildren();
      (ev && ev.attributes.length ? ev.attributes : [null]).forEach(addAttr);
      editor.hidden = false;
      $('#events-empty').hidden = true;
      $('#ev-name').focus();
    }

    let loadSeq = 0;
    async function load() {
      const my = ++loadSeq; // a newer load (after a save or delete) replaces this one
      let data;
      try { data = await api('GET', '/api/v1/events'); } catch (e) { if (my === loadSeq) toast(e.message); return; }
      if (my !== loadSeq) return;
      const evs = data.events || [];
      $('#events-body').replaceChildren(...evs.map((ev) => el('tr', { dataset: { name: ev.name } },
        el('td', { class: 'name', 'data-label': 'Event' }, el('b', {}, ev.name), ev.description ? el('div', { class: 'muted small' }, ev.description) : null),
        el('td', { 'data-label': 'Attributes' }, el('div', { class: 'chips' }, ev.attributes.map((a) => el('span', { class: 'chip' }, a.name, ' ', el('i', {}, a.type))))),
        el('td', { 'data-label': 'Last updated' }, fmtTime(ev.updated_at)),
        el('td', { class: 'actions' },
          el('a', { class: 'btn btn-secondary btn-sm', href: '/webhooks/new?event=' + encodeURIComponent(ev.name) }, 'Create webhook'), ' ',
          el('button', { type: 'button', class: 'btn btn-secondary btn-sm', onclick: () => open(ev) }, 'Edit'), ' ',
          el('button', {
            type: 'button', class: 'btn btn-ghost btn-sm', 'aria-label': 'Delete ' + ev.name,
            onclick: async () => {
              if (!(await confirmDialog('Delete event?', '\u201c' + ev.name + '\u201d is removed from the catalog. Events used by a webhook cannot be deleted.', 'Delete'))) return;
              try { await api('DELETE', '/api/v1/events/' + ev.id); toast('Event deleted'); } catch (e) { toast(e.status === 409 ? 'A webhook still fires this event.' : e.message); }
              load();
            },
          }, 'Delete')))));
      $('#events-table').hidden = evs.length === 0;
      $('#events-empty').hidden = evs.length > 0;
    }

    $('#create-event').addEventListener('click', () => open(null));
    $('#cancel-event').addEventListener('click', () => { editor.hidden = true; load(); });
    $('#add-attr').addEventListener('click', () => { const r = addAttr(); $('.attr-name', r).focus(); });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      errBox.hidden = true;
      const sent = [];
      const attributes = [];
      for (const r of $$('.attr-row', rows)) {
        const name = $('.attr-name', r).value.trim();
        if (!name) continue;
        attributes.push({ name, type: $('.attr-type', r).value });
        sent.push(r);
      }
      const body = { name: $('#ev-name').value.trim(), description: $('#ev-description').value.trim(), attributes };
      try {
        if (editing) await api('PUT', '/api/v1/events/' + editing.id, body, { ifMatch: editing.version });
        else await api('POST', '/api/v1/events', body);
        editor.hidden = true;
        toast(editing ? 'Event saved' : 'Event created');
        load();
      } catch (err) {
        if (err.status === 412) err = new APIError(412, { detail: 'Someone else changed this event meanwhile; reload the page.' });
        showErrors(form, errBox, err, (f) => {
          const m = /^attributes\[(\d+)\]\.(name|type)$/.exec(f.field);
          if (!m || !sent[Number(m[1])]) return null;
          return $(m[2] === 'name' ? '.attr-name' : '.attr-type', sent[Number(m[1])]).parentElement.querySelector('.field-error');
        });
      }
    });
    load();
  }

  // ---- API keys -----------------------------------------------------------------------------------

  function apiKeysPage() {
    const editor = $('#key-editor');
    const form = $('#key-form');
    const errBox = $('#key-error');
    const shown = $('#new-key');

    function status(k) {
      if (k.revoked_at) return el('span', { class: 'badge badge-off', title: fmtTime(k.revoked_at) }, 'Revoked ' + fmtTime(k.revoked_at));
      return el('span', { class: 'badge badge-on' }, 'Active');
    }
    async function revoke(k, activeCount) {
      if (activeCount <= 1) { toast('This is the project\u2019s last active key: create another one first.'); return; }
      const label = k.name ? '\u201c' + k.name + '\u201d (' + k.prefix + '\u2026)' : k.prefix + '\u2026';
      const text = k.current
        ? 'You are signed in with ' + label + '. Revoking it signs you out now, and every request made with it is refused from now on.'
        : label + ' stops working at once: requests made with it are refused and console sessions signed in with it end.';
      if (!(await confirmDialog('Revoke API key?', text, 'Revoke key'))) return;
      try {
        await api('POST', '/api/v1/api-keys/' + k.id + '/revoke');
      } catch (e) { toast(e.message); load(); return; }
      if (k.current) { location.href = '/login'; return; }
      toast('API key revoked');
      load();
    }

    let loadSeq = 0;
    async function load() {
      const my = ++loadSeq;
      let data;
      try { data = await api('GET', '/api/v1/api-keys'); } catch (e) { if (my === loadSeq) toast(e.message); return; }
      if (my !== loadSeq) return;
      const keys = data.api_keys || [];
      const active = keys.filter((k) => !k.revoked_at).length;
      $('#keys-body').replaceChildren(...keys.map((k) => el('tr', { dataset: { id: String(k.id), status: k.revoked_at ? 'revoked' : 'active' } },
        el('td', { class: 'name', 'data-label': 'Name' }, k.name ? el('b', {}, k.name) : el('span', { class: 'muted' }, 'Unnamed'),
          k.current ? el('div', { class: 'muted small current-key' }, 'This session\u2019s key') : null),
        el('td', { 'data-label': 'Key' }, el('code', {}, k.prefix + '\u2026')),
        el('td', { 'data-label': 'Scopes', class: 'scopes' }, (k.scopes || []).map((sc) => el('span', { class: 'chip' }, sc))),
        el('td', { 'data-label': 'Created' }, fmtTime(k.created_at)),
        el('td', { 'data-label': 'Last used' }, k.last_used_at ? fmtTime(k.last_used_at) : el('span', { class: 'muted' }, 'Never')),
        el('td', { 'data-label': 'Status' }, status(k)),
        el('td', { class: 'actions' }, k.revoked_at ? null : el('button', {
          type: 'button', class: 'btn btn-ghost btn-sm revoke-key', 'aria-label': 'Revoke ' + (k.name || k.prefix),
          onclick: () => revoke(k, active),
        }, 'Revoke')))));
    }

    $('#create-key').addEventListener('click', () => {
      clearErrors(form);
      errBox.hidden = true;
      shown.hidden = true;
      $('#key-name').value = '';
      $$('input[name="key-scope"]').forEach((c) => { c.checked = true; });
      editor.hidden = false;
      $('#key-name').focus();
    });
    $('#cancel-key').addEventListener('click', () => { editor.hidden = true; });
    $('#new-key-done').addEventListener('click', () => { $('#new-key-value').value = ''; shown.hidden = true; });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      errBox.hidden = true;
      try {
        const scopes = $$('input[name="key-scope"]:checked').map((c) => c.value);
        const k = await api('POST', '/api/v1/api-keys', { name: $('#key-name').value.trim(), scopes });
        editor.hidden = true;
        $('#new-key-value').value = k.key;
        shown.hidden = false;
        $('#new-key-value').select();
        load();
      } catch (err) {
        showErrors(form, errBox, err);
      }
    });
    return load();
  }

  // ---- Settings -----------------------------------------------------------------------------------

  function settingsPage() {
    const form = $('#settings-form');
    const errBox = $('#settings-error');
    const saved = $('#settings-saved');
    const url = $('#notification-url');
    const region = $('#phone-region');
    const format = $('#notification-format');

    function fill(p) {
      $('#project-name').textContent = p.name;
      url.value = p.notification_url || '';
      format.value = p.notification_format || 'standard';
      const ret = p.retention || {};
      $('#retention-payload').value = ret.payload_days || 0;
      $('#retention-activity').value = ret.activity_days || 0;
      $('#retention-events').value = ret.events_days || 0;
      region.value = p.phone_region || '';
    }
    form.addEventListener('input', () => { saved.hidden = true; });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      errBox.hidden = true;
      saved.hidden = true;
      clearErrors(form);
      // Region codes are upper case; accept "gb" as the user surely meant "GB".
      region.value = region.value.trim().toUpperCase();
      url.value = url.value.trim();
      const button = $('#save-settings');
      button.disabled = true;
      try {
        fill(await api('PATCH', '/api/v1/project', {
          notification_url: url.value, notification_format: format.value, phone_region: region.value,
          retention: {
            payload_days: Number($('#retention-payload').value) || 0,
            activity_days: Number($('#retention-activity').value) || 0,
            events_days: Number($('#retention-events').value) || 0,
          },
        }));
        saved.textContent = 'Settings saved.';
        saved.hidden = false;
      } catch (err) {
        showErrors(form, errBox, err);
      } finally {
        button.disabled = false;
      }
    });
    $('#rotate-signing').addEventListener('click', async () => {
      if (!(await confirmDialog('Rotate the signing secret?', 'Notifications are signed with the new secret from now on; receivers that verify with the old one will refuse them.', 'Rotate'))) return;
      try {
        $('#signing-secret').value = (await api('POST', '/api/v1/project/signing-secret/rotate')).signing_secret;
        toast('Signing secret rotated');
      } catch (e) { toast(e.message); }
    });
    return Promise.all([
      api('GET', '/api/v1/project').then((p) => {
        fill(p);
        [url, format, region, $('#retention-payload'), $('#retention-activity'), $('#retention-events'), $('#save-settings')].forEach((n) => { n.disabled = false; });
      }),
      // The secret needs the admin scope; a session without it still sees the rest of the page.
      api('GET', '/api/v1/project/signing-secret').then((s) => { $('#signing-secret').value = s.signing_secret; },
        (e) => { $('#signing-secret').placeholder = e.message; }),
    ]);
  }

  // ---- Alerts -------------------------------------------------------------------------------------

  const RULE_HINTS = {
    failure_ratio: 'Fires when more than the threshold percent of a webhook\u2019s requests in the window failed (once the minimum was seen).',
    reason_spike: 'Fires when at least the threshold number of a webhook\u2019s requests in the window failed with the reason.',
    silence: 'Fires when a webhook with at least the threshold number of requests in the hour before the window received none in it; resolves at its next request.',
  };

  function alertsPage() {
    const editor = $('#rule-editor');
    const form = $('#rule-form');
    const errBox = $('#rule-error');
    const kind = $('#rule-kind');

    function condition(r) {
      switch (r.kind) {
        case 'failure_ratio': return 'Failures above ' + r.threshold + '% over ' + r.window_minutes + ' min (at least ' + r.min_requests + ' requests)';
        case 'reason_spike': return 'At least ' + r.threshold + ' \u00d7 ' + reasonLabel(r.reason) + ' over ' + r.window_minutes + ' min';
        case 'silence': return 'No request for ' + r.window_minutes + ' min after at least ' + r.threshold + ' in the hour before';
        default: return r.kind;
      }
    }
    function stateBadge(s) {
      const cls = s === 'firing' || s === 'failed' ? 'badge badge-off' : 'badge badge-on';
      return el('span', { class: cls }, s);
    }
    async function remove(r) {
      if (!(await confirmDialog('Delete alert rule?', '\u201c' + r.name + '\u201d stops being checked; its open alerts are resolved without a notification.', 'Delete rule'))) return;
      try { await api('DELETE', '/api/v1/alert-rules/' + r.id); } catch (e) { toast(e.message); }
      load();
    }
    async function load() {
      const [rules, alerts, deliveries] = await Promise.all([
        api('GET', '/api/v1/alert-rules'), api('GET', '/api/v1/alerts'), api('GET', '/api/v1/notifications')]);
      $('#rules-body').replaceChildren(...(rules.rules.length ? rules.rules.map((r) => el('tr', { dataset: { id: String(r.id) } },
        el('td', { class: 'name', 'data-label': 'Name' }, el('b', {}, r.name)),
        el('td', { 'data-label': 'Condition' }, condition(r)),
        el('td', { 'data-label': 'Webhook' }, r.webhook_id ? el('code', {}, r.webhook_id) : el('span', { class: 'muted' }, 'Each webhook')),
        el('td', { 'data-label': 'Status' }, r.enabled ? el('span', { class: 'badge badge-on' }, 'On') : el('span', { class: 'badge badge-off' }, 'Off')),
        el('td', { class: 'actions' }, el('button', { type: 'button', class: 'btn btn-ghost btn-sm delete-rule', 'aria-label': 'Delete ' + r.name, onclick: () => remove(r) }, 'Delete'))))
        : [el('tr', {}, el('td', { colspan: '5', class: 'muted' }, 'No rules yet.'))]));
      $('#alerts-body').replaceChildren(...(alerts.alerts.length ? alerts.alerts.map((a) => el('tr', { dataset: { id: String(a.id), state: a.state } },
        el('td', { 'data-label': 'State' }, stateBadge(a.state)),
        el('td', { 'data-label': 'What' }, a.message),
        el('td', { 'data-label': 'Webhook' }, a.webhook_id ? el('a', { href: '/webhooks/' + encodeURIComponent(a.webhook_id) + '/activity' }, el('code', {}, a.webhook_id)) : ''),
        el('td', { 'data-label': 'Fired' }, fmtTime(a.fired_at)),
        el('td', { 'data-label': 'Resolved' }, a.state === 'resolved' ? fmtTime(a.resolved_at) : '')))
        : [el('tr', {}, el('td', { colspan: '5', class: 'muted' }, 'No alert has fired.'))]));
      $('#deliveries-body').replaceChildren(...(deliveries.notifications.length ? deliveries.notifications.map((d) => el('tr', { dataset: { id: d.id, state: d.state } },
        el('td', { 'data-label': 'Sent' }, fmtTime(d.created_at)),
        el('td', { 'data-label': 'Event' }, d.event),
        el('td', { 'data-label': 'State' }, stateBadge(d.state), d.last_error ? el('div', { class: 'muted small' }, d.last_error) : null),
        el('td', { 'data-label': 'Attempts' }, d.attempt_log.map((t) => el('div', { class: 'small' },
          '#' + t.attempt + ' ' + fmtTime(t.at) + ' \u2192 ' + (t.status_code || 'no answer') + ' in ' + t.duration_ms + ' ms' + (t.error ? ': ' + t.error : ''))))))
        : [el('tr', {}, el('td', { colspan: '4', class: 'muted' }, 'No notification yet.'))]));
    }
    function kindChanged() {
      $('#rule-kind-hint').textContent = RULE_HINTS[kind.value];
      $('#rule-reason-field').hidden = kind.value !== 'reason_spike';
      $('#rule-min-field').hidden = kind.value !== 'failure_ratio';
    }
    kind.addEventListener('change', kindChanged);
    kindChanged();
    $('#create-rule').addEventListener('click', () => { clearErrors(form); errBox.hidden = true; editor.hidden = false; $('#rule-name').focus(); });
    $('#cancel-rule').addEventListener('click', () => { editor.hidden = true; });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      errBox.hidden = true;
      clearErrors(form);
      const body = {
        name: $('#rule-name').value.trim(), kind: kind.value,
        threshold: Number($('#rule-threshold').value), window_minutes: Number($('#rule-window').value),
      };
      if (kind.value === 'reason_spike') body.reason = $('#rule-reason').value;
      if (kind.value === 'failure_ratio') body.min_requests = Number($('#rule-min').value);
      try {
        await api('POST', '/api/v1/alert-rules', body);
        editor.hidden = true;
        toast('Alert rule added');
        load();
      } catch (err) { showErrors(form, errBox, err); }
    });
    return load();
  }

  // ---- Audit log ----------------------------------------------------------------------------------

  const TARGETS = { project: 'Project', api_key: 'API key', event: 'Event', webhook: 'Webhook', user: 'User', device: 'Device', alert_rule: 'Alert rule', replay_job: 'Replay job' };
  const ACTIONS = { create: 'created', update: 'changed', delete: 'deleted' };

  function erasureBadge(j) {
    const cls = j.status === 'done' ? 'badge badge-on' : (j.status === 'failed' ? 'badge badge-off' : 'badge');
    return el('span', { class: cls, title: j.error || '', dataset: { status: j.status } }, j.status === 'done' ? 'Erased' : j.status);
  }

  function auditPage() {
    const form = $('#audit-filter');
    const body = $('#audit-body');
    const moreBtn = $('#audit-more');
    let before = 0;
    let seq = 0;
    const json = (v) => (v === null || v === undefined ? el('span', { class: 'muted' }, '\u2014') : el('pre', { class: 'code light' }, JSON.stringify(v, null, 1)));

    function row(en) {
      let who = en.via === 'system' ? 'System' : (en.via === 'cli' ? 'CLI (' + (en.key_name || 'operator') + ')' : (en.key_name || 'Unnamed key'));
      if (en.key_id) who += ' \u00b7 key ' + en.key_id;
      if (en.via === 'console') who += ' \u00b7 console';
      return el('tr', { dataset: { id: String(en.id), target: en.target, action: en.action } },
        el('td', { 'data-label': 'When' }, fmtTime(en.at)),
        el('td', { 'data-label': 'Who' }, who),
        el('td', { 'data-label': 'Change' }, (TARGETS[en.target] || en.target) + ' ', el('code', {}, en.target_id), ' ' + (ACTIONS[en.action] || en.action)),
        el('td', { 'data-label': 'Before' }, json(en.before)),
        el('td', { 'data-label': 'After' }, json(en.after)));
    }
    async function load(reset) {
      const my = ++seq;
      if (reset) before = 0;
      const p = new URLSearchParams({ limit: '50' });
      if ($('#audit-target').value) p.set('target', $('#audit-target').value);
      if ($('#audit-target-id').value.trim()) p.set('target_id', $('#audit-target-id').value.trim());
      if (before) p.set('before', String(before));
      const data = await api('GET', '/api/v1/audit?' + p);
      if (my !== seq) return;
      const rows = (data.entries || []).map(row);
      if (reset) body.replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { colspan: 5, class: 'muted' }, 'No changes recorded.'))]));
      else body.append(...rows);
      before = data.next_before || 0;
      moreBtn.hidden = !before;
    }
    async function loadErasures() {
      const data = await api('GET', '/api/v1/erasures');
      const jobs = data.erasures || [];
      $('#erasures-body').replaceChildren(...(jobs.length ? jobs.map((j) => el('tr', { dataset: { id: String(j.id) } },
        el('td', {}, (j.subject_kind === 'user' ? 'User ' : 'Device ') , el('code', {}, j.subject)),
        el('td', {}, erasureBadge(j)),
        el('td', {}, fmtTime(j.requested_at)),
        el('td', {}, j.finished_at ? fmtTime(j.finished_at) : '\u2014')))
        : [el('tr', {}, el('td', { colspan: 4, class: 'muted' }, 'No erasures.'))]));
    }
    form.addEventListener('submit', (e) => { e.preventDefault(); load(true).catch((err) => toast(err.message)); });
    moreBtn.addEventListener('click', () => load(false).catch((err) => toast(err.message)));
    return Promise.all([load(true), loadErasures()]);
  }

  const pages = { webhooks: webhooksPage, webhook_form: webhookFormPage, activity: activityPage, users: usersPage, events: eventsPage, api_keys: apiKeysPage, alerts: alertsPage, settings: settingsPage, audit: auditPage };
  document.addEventListener('DOMContentLoaded', () => {
    countCall(0);
    const init = pages[document.body.dataset.page];
    if (init) {
      Promise.resolve(init()).then(() => { document.body.dataset.ready = 'true'; }, (e) => {
        const box = el('div', { class: 'alert alert-error', role: 'alert' }, 'This page could not load: ' + e.message);
        $('main').prepend(box);
      });
    }
  });
})();
