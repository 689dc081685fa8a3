// TinyOps dashboard: a small single-page app over the REST API (/api/v1). No framework, no build step.
'use strict';
const api = '/api/v1';
const state = { token: null, project: 'default' };

function esc(s) { return String(s ?? '').replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c])); }
function fmtBytes(b) { if (b == null) return ''; const u = ['B', 'KiB', 'MiB', 'GiB']; let i = 0; while (b >= 1024 && i < 3) { b /= 1024; i++; } return (i ? b.toFixed(1) : b) + ' ' + u[i]; }
function fmtNum(n) { return n == null ? '' : Number(n).toLocaleString('en-US'); }
function fmtUs(us) { if (us == null) return ''; return us >= 1000 ? (us / 1000).toFixed(2) + ' ms' : us.toFixed(0) + ' µs'; }
function fmtTime(t) { return t ? new Date(t).toISOString().replace('T', ' ').slice(0, 19) : ''; }
function pill(s) { return `<span class="pill ${esc(s)}">${esc(s)}</span>`; }

async function call(path, method = 'GET') {
  const r = await fetch(api + path, { method, headers: { Authorization: 'Bearer ' + state.token } });
  if (r.status === 401) { showLogin('the token was refused'); throw new Error('unauthorized'); }
  if (!r.ok) { const p = await r.json().catch(() => ({})); throw new Error(p.detail || r.statusText); }
  return r.json();
}
const get = path => call(path);
const post = path => call(path, 'POST');
const proj = p => `/projects/${encodeURIComponent(state.project)}${p}`;
function hashQuery() { return new URLSearchParams(location.hash.split('?')[1] || ''); }
function fmtPct(x) { return x == null ? '' : (x * 100).toFixed(2) + ' %'; }
function passesText(v) {
  if (!v.lineage) return v.parentId ? v.recipe : '(base)';
  return v.lineage.passes.map(p => Object.keys(p.parameters).length ? `${p.pass}(${Object.entries(p.parameters).map(([k, x]) => k + '=' + x).join(', ')})` : p.pass).join(' → ');
}

function showLogin(msg) {
  document.getElementById('login').hidden = false;
  document.getElementById('view').innerHTML = '';
  document.getElementById('login-error').textContent = msg || '';
}

const pages = {
  async fleet() {
    const devices = await get(proj('/devices'));
    const byClass = {};
    for (const d of devices) { const c = d.capabilities.deviceClass || '(none)'; byClass[c] = (byClass[c] || 0) + 1; }
    const online = devices.filter(d => d.lastSeenAt && Date.now() - Date.parse(d.lastSeenAt) < 5 * 60e3).length;
    const withModel = devices.filter(d => d.reported && d.reported.active).length;
    return `<h2>Fleet</h2>
      <div class="cards">
        <div class="card"><div class="v" data-testid="device-count">${devices.length}</div><div class="k">devices</div></div>
        <div class="card"><div class="v">${online}</div><div class="k">seen in the last 5 min</div></div>
        <div class="card"><div class="v">${withModel}</div><div class="k">running a model</div></div>
        ${Object.entries(byClass).map(([c, n]) => `<div class="card"><div class="v">${n}</div><div class="k">${esc(c)}</div></div>`).join('')}
      </div>
      <table id="devices"><thead><tr><th>name</th><th>class</th><th>tags</th><th class="num">RAM</th><th>active model</th><th>phase</th><th>last seen</th></tr></thead><tbody>
      ${devices.map(d => `<tr data-device="${esc(d.id)}"><td>${esc(d.name)}${d.revoked ? ' ' + pill('revoked') : ''}</td><td>${esc(d.capabilities.deviceClass)}</td>
        <td>${d.tags.map(esc).join(', ')}</td><td class="num">${fmtBytes(d.capabilities.ramBytes)}</td>
        <td>${d.reported && d.reported.active ? esc(d.reported.active.modelName + ' v' + d.reported.active.version + ' / ' + d.reported.active.variantId) : '<span class="muted">none</span>'}</td>
        <td>${d.reported ? pill(d.reported.phase) : ''}${d.reported && d.reported.lastError ? ' <span class="error">' + esc(d.reported.lastError) + '</span>' : ''}</td>
        <td>${fmtTime(d.lastSeenAt)}</td></tr>`).join('')}
      </tbody></table>`;
  },

  async models() {
    const models = await get(proj('/models'));
    let html = `<h2>Models</h2><table id="models"><thead><tr><th>model</th><th class="num">versions</th><th>aliases</th><th>created</th></tr></thead><tbody>
      ${models.map(m => `<tr data-model="${esc(m.name)}"><td>${esc(m.name)}</td><td class="num">${m.versionCount}</td>
        <td>${Object.entries(m.aliases).map(([a, v]) => esc(a) + ' → ' + esc(v)).join(', ')}</td><td>${fmtTime(m.createdAt)}</td></tr>`).join('')}
      </tbody></table>`;
    for (const m of models) {
      const versions = await get(proj(`/models/${encodeURIComponent(m.name)}/versions`));
      for (const v of versions) {
        html += `<h3>${esc(m.name)} version ${esc(v.version)} <span class="muted">by ${esc(v.createdBy)}, ${fmtTime(v.createdAt)}</span></h3>`;
        html += `<div class="tree" data-lineage="${esc(m.name)}:${esc(v.version)}">${lineage(v.variants)}</div>`;
        html += `<table class="variants"><thead><tr><th>variant</th><th>recipe</th><th>status</th><th class="num">size</th><th class="num">params</th><th class="num">MACs</th><th class="num">planned peak</th><th>metrics</th><th>operators</th></tr></thead><tbody>
          ${v.variants.map(x => `<tr data-variant="${esc(x.id)}"><td>${esc(x.name)} <span class="muted">${esc(x.id)}</span></td><td>${esc(x.recipe)}</td><td>${pill(x.status)}${x.statusReason ? ' ' + esc(x.statusReason) : ''}</td>
            <td class="num">${fmtBytes(x.artifactSize)}</td><td class="num">${fmtNum(x.metadata.parameters)}</td><td class="num">${fmtNum(x.metadata.macs)}</td>
            <td class="num">${fmtBytes(x.metadata.plannedPeakBytes)}</td><td>${Object.entries(x.metrics).map(([k, val]) => esc(k) + '=' + Number(val).toFixed(4)).join(' ')}</td>
            <td class="muted">${x.metadata.operators.map(esc).join(' ')}</td></tr>`).join('')}
          </tbody></table>`;
      }
    }
    return html;
  },

  async deployments() {
    const list = await get(proj('/deployments'));
    let html = `<h2>Deployments</h2><table id="deployments"><thead><tr><th>id</th><th>model</th><th>selector</th><th>status</th><th>stage</th><th>progress</th><th class="num">installed</th><th class="num">failed</th><th class="num">incompatible</th><th class="num">targeted</th><th>created</th></tr></thead><tbody>
      ${list.map(d => {
        const t = Math.max(d.targeted, 1);
        return `<tr data-deployment="${esc(d.id)}"><td>${esc(d.id)}</td><td>${esc(d.model)} v${esc(d.version)}</td><td>${d.selector.map(esc).join(', ')}</td><td>${pill(d.status)}</td>
          <td>${d.stage === 1 ? 'canary ' + d.canaryPercent + '%' : 'all'}</td>
          <td><div class="bar" title="${d.installed} installed, ${d.failed} failed, ${d.incompatible} incompatible of ${d.targeted}">
            <span style="width:${100 * d.installed / t}%;background:#12805c"></span><span style="width:${100 * d.failed / t}%;background:#c4320a"></span><span style="width:${100 * d.incompatible / t}%;background:#98a2b3"></span></div></td>
          <td class="num" data-field="installed">${d.installed}</td><td class="num">${d.failed}</td><td class="num">${d.incompatible}</td><td class="num" data-field="targeted">${d.targeted}</td><td>${fmtTime(d.createdAt)}</td></tr>`;
      }).join('')}
      </tbody></table>`;
    if (list.length) {
      const d = await get(proj(`/deployments/${encodeURIComponent(list[0].id)}`));
      const reasons = {};
      for (const t of d.targets) { const k = t.state + (t.state === 'incompatible' ? ': ' + t.reason : ''); reasons[k] = (reasons[k] || 0) + 1; }
      html += `<h3>Latest deployment ${esc(d.id)}: targets by state</h3><table id="target-states"><thead><tr><th>state</th><th class="num">devices</th></tr></thead><tbody>
        ${Object.entries(reasons).map(([k, n]) => `<tr><td>${esc(k)}</td><td class="num">${n}</td></tr>`).join('')}</tbody></table>`;
    }
    return html;
  },

  async telemetry() {
    const s = await get(proj('/telemetry/summary'));
    const rows = s.byClass;
    const max = Math.max(1, ...rows.map(r => r.deviceP50Us));
    const barH = 26, w = 760, left = 260;
    const svg = `<svg width="${w + 40}" height="${rows.length * barH + 30}" role="img" aria-label="median latency per device class" id="latency-chart">
      ${rows.map((r, i) => `<text x="0" y="${i * barH + 17}">${esc(r.deviceClass)} · ${esc(r.variantId)}</text>
        <rect x="${left}" y="${i * barH + 4}" width="${Math.max(1, (w - left - 90) * r.deviceP50Us / max)}" height="18" fill="#3056d3" rx="3"></rect>
        <text x="${left + 6 + Math.max(1, (w - left - 90) * r.deviceP50Us / max)}" y="${i * barH + 17}">${fmtUs(r.deviceP50Us)}</text>`).join('')}
      </svg>`;
    return `<h2>Latency per device class</h2>
      <div class="cards"><div class="card"><div class="v" data-testid="inference-count">${fmtNum(s.inferences)}</div><div class="k">inferences</div></div>
        <div class="card"><div class="v">${fmtNum(s.batches)}</div><div class="k">telemetry batches</div></div>
        <div class="card"><div class="v">${fmtNum(s.droppedRecords)}</div><div class="k">records dropped on devices</div></div></div>
      <p class="muted">Median latency on each device class, scaled from the engine's measured cost by the class's profile.</p>
      ${svg}
      <table id="latency"><thead><tr><th>device class</th><th>model</th><th>variant</th><th class="num">inferences</th><th class="num">errors</th><th class="num">p50 here</th><th class="num">p90 here</th><th class="num">p99 here</th><th class="num">p50 on device</th></tr></thead><tbody>
      ${rows.map(r => `<tr data-class="${esc(r.deviceClass)}"><td>${esc(r.deviceClass)}</td><td>${esc(r.model)}</td><td>${esc(r.variantId)}</td><td class="num" data-field="inferences">${fmtNum(r.inferences)}</td><td class="num">${fmtNum(r.errors)}</td>
        <td class="num">${fmtUs(r.p50Us)}</td><td class="num">${fmtUs(r.p90Us)}</td><td class="num">${fmtUs(r.p99Us)}</td><td class="num">${fmtUs(r.deviceP50Us)}</td></tr>`).join('')}
      </tbody></table>`;
  },

  async variants() {
    const q = hashQuery();
    const models = await get(proj('/models'));
    let html = '<h2>Variants</h2><p class="muted">Each version\'s variants side by side: the gate\'s verdict, how each was made, what it measured here and its latency estimated for every device-class profile.</p>';
    for (const m of models.filter(m => !q.get('model') || m.name === q.get('model'))) {
      const versions = await get(proj(`/models/${encodeURIComponent(m.name)}/versions`));
      if (!versions.length) continue;
      const v = versions.find(x => x.version === q.get('version')) || versions[versions.length - 1];
      // one column per device-class profile the server estimated latency for (new profiles appear without a change here)
      const deviceClasses = [...new Set(v.variants.flatMap(x => Object.keys((x.evaluation || {}).deviceLatencyUs || {})))];
      let recipe = null;
      try { recipe = await get(proj(`/models/${encodeURIComponent(m.name)}/recipe`)); } catch (e) { recipe = null; }
      html += `<h3>${esc(m.name)} version ${esc(v.version)} <span class="muted">${recipe ? 'recipe ' + esc(recipe.name) + ' (' + esc(recipe.sha256.slice(0, 12)) + '), evaluation ' + esc(recipe.evaluation || 'none') : 'no recipe'}</span></h3>`;
      if (versions.length > 1) html += `<p class="muted">versions: ${versions.map(x => `<a href="#/variants?model=${encodeURIComponent(m.name)}&version=${encodeURIComponent(x.version)}">${esc(x.version)}</a>`).join(' ')}</p>`;
      html += `<table class="variants side-by-side" data-model="${esc(m.name)}" data-version="${esc(v.version)}"><thead><tr><th>variant</th><th>state</th><th>passes</th><th>targets</th>
        <th class="num">accuracy</th><th class="num">drop (points)</th><th class="num">size</th><th class="num">planned peak</th><th class="num">latency here</th>
        ${deviceClasses.map(c => `<th class="num">est. ${esc(c)}</th>`).join('')}<th>operators</th></tr></thead><tbody>
        ${v.variants.map(x => {
          const e = x.evaluation || {};
          return `<tr data-variant="${esc(x.id)}"><td>${esc(x.name)} <span class="muted">${esc(x.id)}</span></td>
            <td>${pill(x.status)}${x.statusReason ? '<div class="muted small" data-field="reason">' + esc(x.statusReason) + '</div>' : ''}</td>
            <td>${esc(passesText(x))}${x.lineage ? '<div class="muted small">engine ' + esc(x.lineage.engineVersion) + ', job ' + esc(x.lineage.jobId) + '</div>' : ''}</td>
            <td>${x.lineage ? x.lineage.targets.map(esc).join(', ') : ''}</td>
            <td class="num" data-field="accuracy">${fmtPct(e.accuracy)}</td><td class="num">${e.accuracyDrop == null ? '' : e.accuracyDrop.toFixed(2)}</td>
            <td class="num">${fmtBytes(x.artifactSize)}</td><td class="num">${fmtBytes(x.metadata.plannedPeakBytes)}</td><td class="num">${e.latencyUs == null ? '' : fmtUs(e.latencyUs)}</td>
            ${deviceClasses.map(c => `<td class="num" data-class="${esc(c)}">${e.deviceLatencyUs && e.deviceLatencyUs[c] != null ? fmtUs(e.deviceLatencyUs[c]) : ''}</td>`).join('')}
            <td class="muted">${x.metadata.operators.map(esc).join(' ')}</td></tr>`;
        }).join('')}
        </tbody></table>`;
    }
    return html;
  },

  async jobs() {
    const jobs = await get(proj('/jobs?limit=100'));
    const active = jobs.some(j => j.state === 'queued' || j.state === 'running');
    if (active) setTimeout(() => { if (location.hash.startsWith('#/jobs')) render(); }, 2000);
    return `<h2>Jobs</h2><p class="muted">Background work: each pushed version of a model with a recipe is optimized here.${active ? ' Refreshing while jobs run.' : ''}</p>
      <table id="jobs"><thead><tr><th>job</th><th>kind</th><th>model</th><th>state</th><th>progress</th><th>message / error</th><th class="num">attempts</th><th>created</th><th>finished</th><th></th></tr></thead><tbody>
      ${jobs.map(j => `<tr data-job="${esc(j.id)}"><td>${esc(j.id)}</td><td>${esc(j.kind)}</td><td>${esc(j.model)}:${esc(j.version)}</td><td data-field="state">${pill(j.state)}</td>
        <td><div class="bar" title="${j.progress}%"><span style="width:${j.progress}%;background:${j.state === 'failed' ? '#c4320a' : '#3056d3'}"></span></div> <span data-field="progress">${j.progress}%</span></td>
        <td>${esc(j.message)}${j.error ? '<div class="error" data-field="error">' + esc(j.error) + '</div>' : ''}</td>
        <td class="num">${j.attempts}/${j.maxAttempts}</td><td>${fmtTime(j.createdAt)}</td><td>${fmtTime(j.finishedAt)}</td>
        <td>${j.state === 'queued' || j.state === 'running' ? `<button class="cancel" data-cancel="${esc(j.id)}">cancel</button>` : ''}</td></tr>`).join('')}
      </tbody></table>`;
  },

  async audit() {
    const entries = await get(`/audit?project=${encodeURIComponent(state.project)}&limit=200`);
    return `<h2>Audit log</h2><table id="audit"><thead><tr><th>when</th><th>who</th><th>action</th><th>target</th><th>detail</th></tr></thead><tbody>
      ${entries.map(e => `<tr><td>${fmtTime(e.at)}</td><td>${esc(e.actor)}</td><td>${esc(e.action)}</td><td>${esc(e.target)}</td><td>${esc(e.detail)}</td></tr>`).join('')}</tbody></table>`;
  },
};

function lineage(variants) {
  const children = {};
  for (const v of variants) (children[v.parentId || ''] ||= []).push(v);
  const lines = [];
  const walk = (parent, prefix) => (children[parent] || []).forEach((v, i, arr) => {
    const last = i === arr.length - 1;
    lines.push(prefix + (parent ? (last ? '└─ ' : '├─ ') : '') + `${v.name} (${v.id}) ${v.recipe}${Object.keys(v.parameters).length ? ' ' + JSON.stringify(v.parameters) : ''} · ${fmtBytes(v.artifactSize)}`);
    walk(v.id, prefix + (parent ? (last ? '   ' : '│  ') : ''));
  });
  walk('', '');
  return esc(lines.join('\n'));
}

async function render() {
  const page = (location.hash.replace(/^#\//, '') || 'fleet').split('?')[0];
  document.querySelectorAll('nav a').forEach(a => a.classList.toggle('active', a.dataset.page === page));
  if (!state.token) return showLogin();
  document.getElementById('login').hidden = true;
  const view = document.getElementById('view');
  try {
    view.innerHTML = await (pages[page] || pages.fleet)();
    view.querySelectorAll('[data-cancel]').forEach(b => b.onclick = async () => {
      b.disabled = true;
      try { await post(proj(`/jobs/${encodeURIComponent(b.dataset.cancel)}/cancel`)); } catch (e) { alert(e.message); }
      render();
    });
    view.dataset.loaded = page;
  } catch (e) {
    if (e.message !== 'unauthorized') view.innerHTML = `<p class="error">${esc(e.message)}</p>`;
  }
}

async function start() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) { localStorage.setItem('tinyops.token', decodeURIComponent(m[1])); history.replaceState(null, '', location.pathname + '#/fleet'); }
  state.token = localStorage.getItem('tinyops.token');
  state.project = localStorage.getItem('tinyops.project') || 'default';
  document.getElementById('login-form').addEventListener('submit', e => {
    e.preventDefault();
    state.token = document.getElementById('token').value.trim();
    localStorage.setItem('tinyops.token', state.token);
    start();
  });
  if (state.token) {
    try {
      const projects = await get('/projects');
      const sel = document.getElementById('project');
      sel.innerHTML = projects.map(p => `<option ${p.name === state.project ? 'selected' : ''}>${esc(p.name)}</option>`).join('');
      if (!projects.some(p => p.name === state.project) && projects.length) state.project = projects[0].name;
      sel.onchange = () => { state.project = sel.value; localStorage.setItem('tinyops.project', state.project); render(); };
    } catch (e) { return; }
  }
  render();
}
window.addEventListener('hashchange', render);
start();
