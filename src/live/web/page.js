'use strict';
// The live page: follows /events (Server-Sent Events) and draws what the terminal dashboard
// draws. Samples arrive once each, numbered; on a reconnect the browser sends the last number
// (Last-Event-ID) and the server sends only newer ones. Text goes in with textContent only.
(() => {
  const theme = JSON.parse(document.getElementById('theme').textContent);
  const C = theme.chart;
  const NS = 'http://www.w3.org/2000/svg';
  const KEEP_S = 30 * 60;
  const W = C.width, H = C.height, M = { left: 52, right: 12, top: 18, bottom: 40 };
  const live = { state: null, points: new Map(), connects: 0, ended: false, seen: 0, seenAt: 0 };
  window.spotdrillLive = live;
  document.getElementById('version').textContent = theme.version;

  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs = {}, text) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const svg = (tag, attrs = {}, text) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const secs = (s) => (s === null || s === undefined ? '—' : `${s.toFixed(1)} s`);
  const clock = (s) => {
    const t = Math.max(0, Math.round(s));
    const mm = String(Math.floor(t / 60) % 60).padStart(2, '0');
    const ss = String(t % 60).padStart(2, '0');
    return t >= 3600 ? `${Math.floor(t / 3600)}:${mm}:${ss}` : `${mm}:${ss}`;
  };
  const niceTop = (x) => {
    const steps = [2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600];
    return steps.find((s) => s >= x) || Math.ceil(x / 3600) * 3600;
  };

  // "Now" on the run's clock: the newest time seen, moved on by the time since it was seen;
  // a finished run stays at its end.
  const now = () => {
    const f = live.state && live.state.finished;
    if (f) return Math.max(f.at, live.seen);
    return live.seen + (Date.now() / 1000 - live.seenAt);
  };
  const saw = (t) => {
    if (t > live.seen) { live.seen = t; live.seenAt = Date.now() / 1000; }
  };

  function addSamples(batch) {
    for (const p of batch) {
      let pts = live.points.get(p.app);
      if (!pts) { pts = []; live.points.set(p.app, pts); }
      pts.push(p);
      saw(p.at);
    }
    for (const pts of live.points.values()) {
      const last = pts.length ? pts[pts.length - 1].at : 0;
      while (pts.length && pts[0].at < last - KEEP_S) pts.shift();
    }
  }

  function chart(app, color, window) {
    const t1 = now(), t0 = t1 - window;
    const pts = live.points.get(app.name) || [];
    const shown = pts.filter((p) => p.at >= t0 && p.at <= t1 + 1);
    let top = Math.max(1, ...shown.filter((p) => p.lag_s !== null).map((p) => p.lag_s));
    if (app.band_upper_s !== null) top = Math.max(top, app.band_upper_s);
    top = niceTop(top * 1.15);
    const x = (t) => M.left + ((t - t0) / window) * (W - M.left - M.right);
    const y = (v) => H - M.bottom - (v / top) * (H - M.top - M.bottom);
    const s = svg('svg', { class: 'lag-chart', viewBox: `0 0 ${W} ${H}`, role: 'img',
      'aria-label': `lag of ${app.name} over the last ${Math.round(window)} s` });
    s.appendChild(svg('rect', { x: 0, y: 0, width: W, height: H, fill: '#ffffff' }));
    for (let i = 0; i <= 5; i++) {
      const v = (top * i) / 5;
      s.appendChild(svg('line', { x1: M.left, x2: W - M.right, y1: y(v), y2: y(v),
        stroke: i === 0 ? C.grid_bold : C.grid_light }));
      s.appendChild(svg('text', { x: M.left - 6, y: y(v) + 4, 'text-anchor': 'end',
        'font-size': 12 }, top < 5 ? v.toFixed(1) : v.toFixed(0)));
    }
    for (let i = 0; i <= 6; i++) {
      const t = t0 + (window * i) / 6;
      s.appendChild(svg('line', { x1: x(t), x2: x(t), y1: M.top, y2: H - M.bottom,
        stroke: i === 0 ? C.grid_bold : C.grid_light }));
      s.appendChild(svg('text', { x: x(t), y: H - M.bottom + 16, 'text-anchor': 'middle',
        'font-size': 12 }, i === 6 ? 'now' : `-${Math.round(t1 - t)}s`));
    }
    s.appendChild(svg('text', { x: (M.left + W - M.right) / 2, y: H - 6, 'text-anchor': 'middle',
      'font-size': 13 }, 'seconds before now'));
    s.appendChild(svg('text', { x: 14, y: (M.top + H - M.bottom) / 2, 'font-size': 13,
      transform: `rotate(-90 14 ${(M.top + H - M.bottom) / 2})`, 'text-anchor': 'middle' }, 'lag (s)'));
    if (app.band_upper_s !== null) {
      const u = app.band_upper_s;
      s.appendChild(svg('rect', { class: 'band', x: M.left, y: y(u), width: W - M.left - M.right,
        height: y(0) - y(u), fill: color, 'fill-opacity': C.band_fill }));
      s.appendChild(svg('line', { x1: M.left, x2: W - M.right, y1: y(u), y2: y(u), stroke: color,
        'stroke-opacity': C.band_line }));
      s.appendChild(svg('text', { x: M.left + 4, y: y(u) - 4, fill: color, 'font-size': 11 },
        `band ${u.toFixed(1)} s`));
    }
    for (const t of (live.state ? live.state.targets : [])) {
      if (app.target && app.target !== t.name) continue;
      t.steps.forEach((st, i) => {
        if (st.injected_at === null || st.injected_at < t0 || st.injected_at > t1) return;
        const g = svg('g', { class: 'injection', 'data-target': t.name, 'data-step': i + 1 });
        g.appendChild(svg('line', { x1: x(st.injected_at), x2: x(st.injected_at), y1: M.top,
          y2: H - M.bottom, stroke: C.injection, 'stroke-width': C.lag_width }));
        const right = x(st.injected_at) > W * 0.7;
        g.appendChild(svg('text', { x: x(st.injected_at) + (right ? -4 : 4), y: M.top + 12,
          fill: C.injection, 'font-size': 12, 'text-anchor': right ? 'end' : 'start' },
          `injection: step ${i + 1} (${st.terminations})`));
        s.appendChild(g);
      });
    }
    let d = '', pen = false;
    for (const p of shown) {
      if (p.lag_s === null) { pen = false; continue; }
      d += `${pen ? 'L' : 'M'}${x(p.at).toFixed(1)},${y(p.lag_s).toFixed(1)} `;
      pen = true;
    }
    s.appendChild(svg('path', { class: 'lag', 'data-application': app.name, fill: 'none',
      stroke: color, 'stroke-width': C.lag_width, 'stroke-linejoin': 'round', d: d.trim(),
      'data-points': pts.length, 'data-last-seq': pts.length ? pts[pts.length - 1].seq : 0 }));
    return s;
  }

  function drawCharts(st) {
    const box = $('charts');
    const names = st.apps.map((a) => a.name);
    for (const n of live.points.keys()) if (!names.includes(n)) names.push(n);
    if (!names.length) return;
    const window = Math.min(300, Math.max(60, st.started_at ? now() - st.started_at : 0));
    box.replaceChildren(...names.map((name, k) => {
      const app = st.apps.find((a) => a.name === name) ||
        { name, band_upper_s: null, verdict: null, target: null };
      const color = C.palette[k % C.palette.length];
      const pts = live.points.get(name) || [];
      const cur = pts.length ? pts[pts.length - 1] : null;
      const fig = el('figure', { class: 'live-chart', 'data-application': name });
      const cap = el('figcaption');
      cap.appendChild(el('strong', { class: 'name' }, name));
      const over = cur && cur.lag_s !== null && app.band_upper_s !== null && cur.lag_s > app.band_upper_s;
      cap.appendChild(el('span', { class: over ? 'now over' : 'now' },
        cur ? (cur.lag_s === null ? 'no data' : secs(cur.lag_s)) : '—'));
      if (app.band_upper_s !== null) cap.appendChild(el('span', { class: 'band' }, `band ≤ ${secs(app.band_upper_s)}`));
      cap.appendChild(el('span', { class: `verdict ${app.verdict || 'not-run'}` }, app.verdict || 'so far: —'));
      fig.appendChild(cap);
      fig.appendChild(chart(app, color, window));
      return fig;
    }));
  }

  function drawLadder(st) {
    if (!st.targets.length) return;
    $('targets').replaceChildren(...st.targets.map((t) => {
      const div = el('div', { class: 'target', 'data-target': t.name });
      const h = el('h3', {}, t.name);
      const tolerates = t.tolerance === null ? '' : ` · tolerates ${t.tolerance}`;
      h.appendChild(el('span', { class: 'kind' }, ` ${t.kind} · needs ${t.required_tolerance}${tolerates}`));
      div.appendChild(h);
      const ol = el('ol', { class: 'steps' });
      t.steps.forEach((s, i) => {
        const li = el('li', { class: s.state, 'data-state': s.state },
          `${i + 1}. ${s.terminations} termination${s.terminations === 1 ? '' : 's'} — ${s.state}`);
        const from = s.injected_at !== null ? s.injected_at : s.started_at;
        if ((s.state === 'observing' || s.state === 'injecting') && from !== null) {
          li.appendChild(el('span', { class: 'clock' }, clock(now() - from)));
        }
        if (s.capacity_after_s !== null) li.appendChild(el('span', { class: 'note' }, ` · capacity back after ${secs(s.capacity_after_s)}`));
        if (s.note) li.appendChild(el('div', { class: 'note' }, s.note));
        ol.appendChild(li);
      });
      div.appendChild(ol);
      if (t.capacity) {
        div.appendChild(el('p', { class: 'capacity' },
          `capacity: ${t.capacity.summary || ''}${t.capacity.error ? `probe error: ${t.capacity.error}` : ''}`));
      }
      return div;
    }));
  }

  function drawEvents(st) {
    const items = st.events.slice(-60).reverse().map((e) => {
      const li = el('li', { class: e.tone });
      const when = e.since_injection_s !== null ? `+${e.since_injection_s.toFixed(1)}s`
        : new Date(e.at * 1000).toISOString().slice(11, 19);
      li.appendChild(el('time', {}, when));
      li.appendChild(document.createTextNode(` ${e.text}`));
      return li;
    });
    $('events').replaceChildren(...items);
  }

  function drawHeader(st) {
    $('plan').textContent = st.plan || 'waiting for the run to start';
    $('phase').textContent = st.phase;
    $('elapsed').textContent = st.started_at ? `t+${clock(now() - st.started_at)}` : '';
    const v = $('verdict');
    if (st.finished) {
      v.hidden = false;
      v.className = `verdict ${st.finished.verdict}`;
      v.dataset.verdict = st.finished.verdict;
      v.textContent = `VERDICT ${st.finished.verdict.toUpperCase()} · exit code ${st.finished.exit_code}`;
    } else {
      v.hidden = true;
    }
    $('stopped').hidden = !st.stopped;
    $('stopped').textContent = st.stopped ? `Escalation stopped: ${st.stopped}` : '';
  }

  let queued = false;
  function draw() {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      const st = live.state;
      if (!st) return;
      drawHeader(st);
      drawCharts(st);
      drawLadder(st);
      drawEvents(st);
    });
  }

  function connection(state, text) {
    const c = $('connection');
    c.dataset.state = state;
    c.textContent = text;
  }

  const token = new URLSearchParams(location.search).get('token');
  const url = 'events' + (token ? `?token=${encodeURIComponent(token)}` : '');
  function connect() {
    const es = new EventSource(url);
    live.source = es;
    es.onopen = () => { live.connects += 1; connection('open', 'live'); };
    es.onerror = () => {
      if (live.ended) return;
      if (es.readyState === EventSource.CLOSED) {
        connection('closed', 'disconnected; retrying');
        setTimeout(connect, 3000);
      } else {
        connection('reconnecting', 'reconnecting…');
      }
    };
    es.addEventListener('reset', () => { live.points.clear(); draw(); });
    es.addEventListener('samples', (e) => { addSamples(JSON.parse(e.data)); draw(); });
    es.addEventListener('state', (e) => {
      live.state = JSON.parse(e.data);
      saw(live.state.latest);
      draw();
    });
    es.addEventListener('end', () => {
      live.ended = true;
      es.close();
      connection('ended', 'the run is over; spotdrill stopped serving');
      draw();
    });
  }
  connect();
  setInterval(draw, 1000);
})();
