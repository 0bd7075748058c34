// feedd demo page: opens the feed of the user whose token is in the URL
// fragment (/#token=JWT[&types=a,b]), shows the connection state and lists
// the events as they arrive. Event data is only ever set as textContent.
'use strict';

(() => {
  const MAX_ITEMS = 200; // the list keeps the newest this many events
  const TYPE_NAME = /^[A-Za-z0-9._:-]{1,64}$/;

  const $ = (id) => document.getElementById(id);
  const ui = {
    state: $('state'), detail: $('detail'), user: $('user'), expires: $('expires'),
    lastId: $('last-id'), types: $('types'), reconnect: $('reconnect'), noToken: $('no-token'),
    noTokenURL: $('no-token-url'), connection: $('connection'), eventsSection: $('events-section'), list: $('events'), empty: $('empty'), count: $('count'), curl: $('curl'),
  };

  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get('token') || '';
  const claims = decodeClaims(token);
  const sub = claims && typeof claims.sub === 'string' ? claims.sub : '';
  // exp in ms, within what a Date holds (8.64e15 ms either way): the
  // server takes an exp past the year 9999 as never expiring.
  const MAX_DATE = 8.64e15;
  const exp = claims && typeof claims.exp === 'number'
    ? Math.max(-MAX_DATE, Math.min(claims.exp * 1000, MAX_DATE)) : 0;
  const storageKey = 'feedd:lastEventId:' + sub; // per user: two users on one browser do not mix

  // types are the event names the page listens for. EventSource hands a
  // named event only to listeners registered for its name, so the page
  // cannot show "all" types: it listens for message, the types named in
  // the fragment and the types seen in the user's recent history.
  const types = new Set(['message']);
  for (const t of (fragment.get('types') || '').split(',')) {
    if (TYPE_NAME.test(t.trim())) types.add(t.trim());
  }

  const items = new Map(); // event id -> <li>, so that no id is shown twice
  let es = null;           // the open EventSource
  let lastId = null;       // id of the newest event shown, as a string
  let quietTruncation = false;
  let noticeSeq = 0;
  let live = 0;
  let duplicates = 0;

  window.addEventListener('hashchange', () => location.reload());
  ui.reconnect.addEventListener('click', () => connect(lastId, lastId !== null));
  showHowTo();

  if (!token) {
    setState('closed', 'no token', 'Open this page with #token=… (see below).');
    ui.noTokenURL.textContent = location.origin + '/#token=…';
    ui.noToken.hidden = false;
    ui.connection.hidden = true;
    ui.eventsSection.hidden = true;
    return;
  }
  ui.user.textContent = sub || '(unknown)';
  ui.expires.textContent = !exp ? '(no exp claim)'
    : exp >= Date.UTC(10000, 0, 1) ? 'never' : formatTime(new Date(exp), true);
  if (!claims || !sub) {
    setState('closed', 'bad token', 'The token in the address is not a JWT with a sub claim.');
    return;
  }
  showTypes();
  start();

  // start renders the user's recent history, then opens the feed after it.
  async function start() {
    setState('connecting', 'connecting…', 'Loading recent history…');
    const stored = readStored();
    let cursor = stored;
    let history = null;
    try {
      const resp = await fetch('/v1/notifications?limit=50', { headers: auth(), cache: 'no-store' });
      if (!resp.ok) {
        refused(resp.status, await errorText(resp));
        return;
      }
      history = (await resp.json()).events || [];
    } catch (err) {
      // No history (the server is down?): the feed may still open, and
      // the browser retries it by itself.
    }
    if (history) {
      for (const ev of history) {
        if (TYPE_NAME.test(ev.type)) types.add(ev.type);
      }
      showTypes();
      if (cursor === null) {
        // A first visit: show the history, then go live after its newest
        // event (or from the start of an empty history, so that nothing
        // posted meanwhile is missed).
        cursor = history.length ? String(history[history.length - 1].id) : '0';
        quietTruncation = true; // nothing shown yet, so nothing to warn about
      }
      // After a reload, the history shows what the page had shown and the
      // feed replays what came after the stored id.
      for (const ev of history) {
        if (ev.id <= Number(cursor)) {
          addEvent(String(ev.id), ev.type, typeof ev.data === 'string' ? ev.data : JSON.stringify(ev.data),
            new Date(ev.created_at), 'history');
        }
      }
    }
    connect(cursor, stored !== null);
  }

  // connect opens the feed, replaying what follows cursor when it is set.
  function connect(cursor, resumed) {
    if (es) es.close();
    ui.reconnect.hidden = true;
    let url = '/events?token=' + encodeURIComponent(token);
    if (cursor !== null && cursor !== undefined) url += '&last_event_id=' + encodeURIComponent(cursor);
    setState('connecting', 'connecting…', 'Opening the feed…');
    const source = new EventSource(url);
    es = source;
    // A first visit with nothing shown has lost nothing: a truncation
    // reported on its first connection is not news.
    const quiet = quietTruncation;
    quietTruncation = false;
    let dropped = false;
    for (const t of types) source.addEventListener(t, onEvent);
    source.addEventListener('feed.truncated', (e) => { if (!quiet || dropped) onTruncated(e); });
    source.addEventListener('feed.reset', onReset);
    source.onopen = () => {
      if (source !== es) return;
      const since = formatTime(new Date(), false);
      if (dropped) {
        const from = lastId ? ` Resumed after id ${lastId}.` : '';
        setState('open', 'open', `Reconnected at ${since}.${from}`);
        return;
      }
      const from = resumed && cursor ? ` Resumed after id ${cursor}.` : '';
      setState('open', 'open', `Live since ${since}.${from}`);
    };
    source.onerror = () => {
      if (source !== es) return;
      dropped = true;
      if (exp && Date.now() >= exp) {
        // The server ends a feed when its token expires; reconnecting
        // with the same token cannot help.
        source.close();
        showExpired();
        return;
      }
      if (source.readyState === EventSource.CONNECTING) {
        const at = lastId ? ` and resumes after id ${lastId}` : '';
        setState('reconnecting', 'reconnecting…', `The connection dropped. The browser reconnects by itself${at}.`);
        return;
      }
      // CLOSED: the server answered something other than a stream, and
      // EventSource does not retry that. Ask why.
      diagnose();
    };
  }

  // onEvent shows one event of the feed.
  function onEvent(e) {
    if (!e.lastEventId) return; // every feedd notification has an id
    if (items.has(e.lastEventId)) {
      duplicates++;
      ui.list.dataset.duplicates = String(duplicates);
      return;
    }
    live++;
    ui.list.dataset.live = String(live);
    addEvent(e.lastEventId, e.type, e.data, new Date(), 'live');
  }

  function onTruncated(e) {
    const d = parseJSON(e.data) || {};
    addNotice('feed.truncated', `Events after id ${d.last_event_id} were deleted by retention; ` +
      `the feed goes on from id ${d.oldest_retained_id}, the oldest still kept.`, e.data);
  }

  function onReset(e) {
    const d = parseJSON(e.data) || {};
    addNotice('feed.reset', `The stored position (id ${d.last_event_id}) is beyond this server's log ` +
      `(newest id ${d.newest_id}): the database was replaced. Starting again after id ${d.newest_id}.`, e.data);
    forgetStored();
    lastId = null;
    ui.lastId.textContent = 'none yet';
    // Reopen with the log's newest id, so that the browser's own
    // reconnects do not send the stale id again.
    if (Number.isSafeInteger(d.newest_id)) connect(String(d.newest_id), true);
  }

  // addEvent puts an event at the top of the list, once per id.
  function addEvent(id, type, data, time, source) {
    if (items.has(id)) return;
    const li = el('li', 'event');
    li.dataset.id = id;
    li.dataset.type = type;
    li.dataset.source = source;
    const meta = el('div', 'meta');
    meta.append(el('span', 'type', type), el('span', 'id', '#' + id));
    const t = el('time', 'time', formatTime(time, true));
    t.dateTime = time.toISOString();
    t.title = (source === 'history' ? 'posted ' : 'received ') + time.toLocaleString();
    meta.append(t, el('span', 'source', source));
    const pretty = prettyData(data);
    const pre = el('pre', pretty.json ? 'data json' : 'data', pretty.text);
    li.append(meta, pre);
    insert(li);
    items.set(id, li);
    if (lastId === null || Number(id) > Number(lastId)) {
      lastId = id;
      ui.lastId.textContent = id;
      store(id);
    }
  }

  function addNotice(type, text, raw) {
    const li = el('li', 'event notice');
    li.dataset.notice = String(++noticeSeq);
    li.dataset.type = type;
    const meta = el('div', 'meta');
    const t = el('time', 'time', formatTime(new Date(), true));
    meta.append(el('span', 'type', type), t, el('span', 'source', 'server'));
    li.append(meta, el('p', 'notice-text', text), el('pre', 'data json', prettyData(raw).text));
    insert(li);
  }

  function insert(li) {
    ui.list.prepend(li);
    while (ui.list.children.length > MAX_ITEMS) {
      const old = ui.list.lastElementChild;
      if (old.dataset.id) items.delete(old.dataset.id);
      old.remove();
    }
    ui.empty.hidden = true;
    ui.count.textContent = `(${ui.list.children.length})`;
  }

  // diagnose asks the server why it refused the feed: EventSource itself
  // reports only "error".
  async function diagnose() {
    const ctl = new AbortController();
    try {
      const resp = await fetch('/events', { headers: auth(), cache: 'no-store', signal: ctl.signal });
      if (resp.ok) {
        ctl.abort();
        setState('closed', 'closed', 'The feed closed. Reconnect to resume.');
        ui.reconnect.hidden = false;
        return;
      }
      refused(resp.status, await errorText(resp));
    } catch (err) {
      setState('closed', 'closed', 'The feed closed and the server cannot be reached.');
      ui.reconnect.hidden = false;
    }
  }

  // refused shows why the server turned the page away.
  function refused(status, text) {
    if (status === 401 && (/expired/i.test(text) || (exp && Date.now() >= exp))) {
      showExpired();
      return;
    }
    setState('closed', 'closed', `The server answered ${status}: ${text}`);
    ui.reconnect.hidden = status === 401 || status === 403;
  }

  function showExpired() {
    const who = sub || 'USER';
    setState('expired', 'token expired',
      `token expired — get a new token (feedd token --sub ${who}) and reload with #token=...`);
    ui.reconnect.hidden = true;
  }

  function setState(state, label, detail) {
    ui.state.dataset.state = state;
    ui.state.textContent = label;
    ui.detail.textContent = detail;
    document.body.dataset.state = state;
  }

  function showTypes() {
    ui.types.textContent = [...types].join(', ');
  }

  function showHowTo() {
    const user = sub ? JSON.stringify(sub) : '"alice"';
    const body = `{"user":${user},"type":"greeting","data":{"text":"hello"}}`;
    ui.curl.textContent = 'ADMIN_TOKEN=$(feedd token --admin --ttl 1h)\n' +
      `curl -X POST ${location.origin}/admin/notifications \\\n` +
      '  -H "Authorization: Bearer $ADMIN_TOKEN" -H \'Content-Type: application/json\' \\\n' +
      `  -d '${body.replace(/'/g, "'\\''")}'`;
  }

  // auth is for fetch, which, unlike EventSource, can send the token in a
  // header rather than in the address.
  function auth() {
    return { Authorization: 'Bearer ' + token };
  }

  function readStored() {
    try {
      const v = localStorage.getItem(storageKey);
      return v && /^\d{1,19}$/.test(v) ? v : null;
    } catch (err) {
      return null; // storage disabled: start afresh on every load
    }
  }

  function store(id) {
    try { localStorage.setItem(storageKey, id); } catch (err) { /* storage disabled or full */ }
  }

  function forgetStored() {
    try { localStorage.removeItem(storageKey); } catch (err) { /* storage disabled */ }
  }

  // decodeClaims reads a JWT's payload without verifying it: the server
  // does that. It returns null for anything that is not a JWT.
  function decodeClaims(jwt) {
    const parts = jwt.split('.');
    if (parts.length !== 3) return null;
    try {
      let b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
      b64 += '='.repeat((4 - (b64.length % 4)) % 4);
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const v = JSON.parse(new TextDecoder().decode(bytes));
      return v && typeof v === 'object' ? v : null;
    } catch (err) {
      return null;
    }
  }

  async function errorText(resp) {
    try {
      const body = await resp.json();
      if (body && typeof body.error === 'string') return body.error;
    } catch (err) { /* not JSON */ }
    return resp.statusText || 'no reason given';
  }

  function parseJSON(text) {
    try { return JSON.parse(text); } catch (err) { return null; }
  }

  // prettyData indents data that is a JSON object or array; anything else
  // is shown as sent.
  function prettyData(text) {
    const s = text.trim();
    if (s.startsWith('{') || s.startsWith('[')) {
      const v = parseJSON(s);
      if (v !== null && typeof v === 'object') return { text: JSON.stringify(v, null, 2), json: true };
    }
    return { text, json: false };
  }

  function formatTime(d, withDate) {
    const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    const today = d.toDateString() === new Date().toDateString();
    return withDate && !today ? d.toLocaleDateString() + ' ' + time : time;
  }

  function el(tag, cls, text) {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  }
})();
