/**
 * The page for people (`GET /`): plain HTML, CSS and a little script, served as three files so the
 * Content-Security-Policy can forbid every inline script and style. No build step, no framework. The
 * script builds the DOM with `textContent` only, so no name from disk is ever parsed as HTML.
 */

/** The page's policy: only its own script, style, images and API; no frames, forms or plugins. */
export const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>actor-sync · training data</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/page.css">
<script type="module" src="/page.js"></script>
</head>
<body>
<header>
  <h1>actor-sync</h1>
  <p>Training data of every actor: the manifest plus a fresh look at its folder.</p>
  <p class="legend" aria-label="Legend">
    <span><span class="mark">🟢</span> synced</span>
    <span><span class="mark">🔵</span> local_only</span>
    <span><span class="mark">🟡</span> s3_only</span>
    <span><span class="mark">🔴</span> out_of_sync</span>
    <span><span class="mark">⚪</span> missing</span>
  </p>
</header>
<main>
  <section id="actors-panel" aria-labelledby="actors-title">
    <div class="panel-head">
      <h2 id="actors-title">Actors</h2>
      <button type="button" id="reload-actors">Reload</button>
    </div>
    <p id="actors-state" class="state" role="status">Loading actors…</p>
    <table id="actors">
      <thead>
        <tr><th scope="col">Actor</th><th scope="col" title="images">All</th><th scope="col" title="synced">🟢</th><th scope="col" title="local_only">🔵</th><th scope="col" title="s3_only">🟡</th><th scope="col" title="out_of_sync">🔴</th><th scope="col" title="not yet in the manifest">New</th></tr>
      </thead>
      <tbody></tbody>
    </table>
  </section>
  <section id="actor-panel" aria-labelledby="actor-title">
    <div class="panel-head">
      <h2 id="actor-title">Choose an actor</h2>
      <button type="button" id="reload-actor" hidden>Reload</button>
    </div>
    <p id="actor-state" class="state" role="status">Pick an actor on the left to see its images.</p>
    <dl id="actor-facts"></dl>
    <ul id="images"></ul>
  </section>
</main>
</body>
</html>
`;

export const PAGE_CSS = `:root {
  color-scheme: light dark;
  --bg: #f6f7f9; --panel: #fff; --text: #1d2330; --muted: #5d6677; --line: #dde1e8; --accent: #2f6fde; --bad: #b42318;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif;
}
@media (prefers-color-scheme: dark) {
  :root { --bg: #14171c; --panel: #1c2027; --text: #e6e9ef; --muted: #9aa3b2; --line: #2e343e; --accent: #7aa7ff; --bad: #ff8a80; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); }
header { padding: 16px 24px 8px; }
header h1 { margin: 0; font-size: 22px; }
header p { margin: 4px 0; color: var(--muted); }
.legend { display: flex; flex-wrap: wrap; gap: 16px; }
.mark { font-family: "Noto Color Emoji", "Apple Color Emoji", "Segoe UI Emoji", sans-serif; }
main { display: grid; grid-template-columns: minmax(320px, 420px) 1fr; gap: 16px; padding: 8px 24px 24px; align-items: start; }
@media (max-width: 900px) { main { grid-template-columns: 1fr; } }
section { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 12px 16px; min-width: 0; }
.panel-head { display: flex; align-items: center; justify-content: space-between; gap: 8px; }
h2 { font-size: 17px; margin: 4px 0 8px; overflow-wrap: anywhere; }
button { font: inherit; padding: 3px 12px; border-radius: 6px; border: 1px solid var(--line); background: var(--bg); color: var(--text); cursor: pointer; }
.state { color: var(--muted); margin: 4px 0 8px; }
.state.error { color: var(--bad); }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 6px; border-bottom: 1px solid var(--line); text-align: right; }
th:first-child, td:first-child { text-align: left; }
tbody tr { cursor: pointer; }
tbody tr:hover { background: var(--bg); }
tbody tr[aria-current="true"] { background: color-mix(in srgb, var(--accent) 14%, transparent); }
td a { color: var(--accent); text-decoration: none; overflow-wrap: break-word; }
td .error { display: block; color: var(--bad); font-size: 13px; }
#actor-facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0 0 12px; color: var(--muted); }
#actor-facts dd { margin: 0; overflow-wrap: anywhere; color: var(--text); }
#images { list-style: none; margin: 0; padding: 0; display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 8px; overflow: hidden; background: var(--bg); display: flex; flex-direction: column; }
.card[data-status="out_of_sync"] { border-color: var(--bad); }
.thumb { aspect-ratio: 1; width: 100%; display: flex; align-items: center; justify-content: center; background: var(--line); color: var(--muted); font-size: 13px; text-align: center; }
.thumb img { width: 100%; height: 100%; object-fit: cover; display: block; }
.card-body { padding: 6px 8px 8px; font-size: 13px; }
.card-title { display: flex; gap: 6px; align-items: baseline; font-weight: 600; overflow-wrap: break-word; min-width: 0; }
.card-title > span:last-child { min-width: 0; }
.card-meta { color: var(--muted); margin-top: 2px; }
.badges { display: flex; flex-wrap: wrap; gap: 4px; margin-top: 4px; }
.badge { border: 1px solid var(--line); border-radius: 999px; padding: 0 7px; font-size: 12px; background: var(--panel); }
.badge.untracked { border-color: var(--accent); color: var(--accent); }
code { font-size: 12px; }
`;

export const PAGE_JS = `const MARKS = { synced: '🟢', local_only: '🔵', s3_only: '🟡', out_of_sync: '🔴', missing: '⚪' };

const $ = (selector) => document.querySelector(selector);

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'text') node.textContent = String(value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  node.append(...children);
  return node;
}

/** Text that may wrap after each "_" (names are long and have no spaces). */
function breakable(text) {
  const node = document.createElement('span');
  text.split(/(?<=_)/).forEach((part, i) => {
    if (i > 0) node.append(document.createElement('wbr'));
    node.append(part);
  });
  return node;
}

function mark(status) {
  return el('span', { class: 'mark', role: 'img', 'aria-label': status, title: status, text: MARKS[status] ?? '?' });
}

function setState(selector, text, isError = false) {
  const node = $(selector);
  node.textContent = text;
  node.hidden = text === '';
  node.classList.toggle('error', isError);
}

async function getJson(url) {
  const response = await fetch(url, { headers: { accept: 'application/json' } });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error(body?.error ?? 'the server answered ' + response.status);
  return body;
}

function selectedActor() {
  const match = /^#\\/actors\\/(.+)$/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : null;
}

function actorHref(name) {
  return '#/actors/' + encodeURIComponent(name);
}

async function loadActors() {
  setState('#actors-state', 'Loading actors…');
  try {
    // The studio's list: entries of its actorsData.json with no actor folder here have no counts; not shown.
    const actors = (await getJson('/api/actors')).filter((actor) => actor.actor_name !== undefined);
    const rows = actors.map((actor) => {
      const name = el('td', {}, el('a', { href: actorHref(actor.actor_name) }, breakable(actor.actor_name)));
      if (actor.error) name.append(el('span', { class: 'error', text: actor.error }));
      const row = el('tr', { 'data-actor': actor.actor_name, 'data-id': actor.actor_id }, name,
        ...[actor.total_count, actor.synced_count, actor.local_only_count, actor.s3_only_count, actor.out_of_sync_count, actor.untracked_count]
          .map((n) => el('td', { text: n })));
      row.addEventListener('click', (event) => {
        if (event.target.closest('a') === null) location.hash = actorHref(actor.actor_name);
      });
      return row;
    });
    $('#actors tbody').replaceChildren(...rows);
    setState('#actors-state', actors.length === 0 ? 'No actor folders under this data root.' : actors.length + ' actors');
    highlight();
  } catch (error) {
    setState('#actors-state', 'Could not load the actors: ' + error.message, true);
  }
}

function highlight() {
  const chosen = selectedActor();
  for (const row of document.querySelectorAll('#actors tbody tr')) {
    const on = chosen !== null && (row.dataset.actor === chosen || row.dataset.id === chosen || Number(row.dataset.id) === Number(chosen));
    row.setAttribute('aria-current', on ? 'true' : 'false');
  }
}

function fact(term, value) {
  return [el('dt', { text: term }), el('dd', { text: value })];
}

function card(actorName, image) {
  const thumb = el('div', { class: 'thumb' });
  if (image.local_exists) {
    const src = '/thumbnails/' + encodeURIComponent(actorName) + '/' + encodeURIComponent(image.filename);
    const img = el('img', { src, alt: image.filename, loading: 'lazy', decoding: 'async' });
    img.addEventListener('error', () => thumb.replaceChildren('no preview'), { once: true });
    thumb.append(img);
  } else {
    thumb.append('not on this machine');
  }
  const badges = el('div', { class: 'badges' }, el('span', { class: 'badge', text: image.status }));
  if (!image.tracked) badges.append(el('span', { class: 'badge untracked', text: 'not in manifest' }));
  if (image.good) badges.append(el('span', { class: 'badge', text: 'good' }));
  const size = image.size_mb === null ? null : image.size_mb === 0 ? '< 0.01 MB' : image.size_mb + ' MB';
  const meta = [size, image.md5_hash?.slice(0, 8)].filter(Boolean).join(' · ');
  return el('li', { class: 'card', 'data-status': image.status, 'data-filename': image.filename, 'data-tracked': String(image.tracked) },
    thumb,
    el('div', { class: 'card-body' },
      el('div', { class: 'card-title' }, mark(image.status), breakable(image.filename)),
      el('div', { class: 'card-meta', text: meta || 'no local file' }),
      badges));
}

let shown = 0;

async function showActor() {
  highlight();
  const chosen = selectedActor();
  const list = $('#images');
  $('#reload-actor').hidden = chosen === null;
  if (chosen === null) return;
  const ticket = ++shown;
  $('#actor-title').textContent = chosen;
  list.dataset.state = 'loading';
  setState('#actor-state', 'Looking at the folder…');
  try {
    const data = await getJson('/api/actors/' + encodeURIComponent(chosen) + '/training-data');
    if (ticket !== shown) return;
    $('#actor-title').textContent = data.actor_name;
    const counts = [
      ['synced', data.synced_count], ['local_only', data.local_only_count], ['s3_only', data.s3_only_count],
      ['out_of_sync', data.out_of_sync_count], ['missing', data.missing_count],
    ].filter(([, n]) => n > 0).map(([status, n]) => MARKS[status] + ' ' + n + ' ' + status).join('   ');
    $('#actor-facts').replaceChildren(
      ...fact('Images', data.total_count + (counts ? '  —  ' + counts : '')),
      ...fact('Not in manifest', String(data.untracked_count)),
      ...fact('Manifest updated', data.manifest_updated ?? 'never (run sync)'),
      ...fact('Base image', data.base_image_path ?? 'none'),
    );
    list.replaceChildren(...data.training_images.map((image) => card(data.actor_name, image)));
    setState('#actor-state', data.total_count === 0 ? 'This actor has no training images.' : '');
    list.dataset.actor = data.actor_name;
    list.dataset.state = 'ready';
  } catch (error) {
    if (ticket !== shown) return;
    $('#actor-facts').replaceChildren();
    list.replaceChildren();
    list.dataset.state = 'error';
    setState('#actor-state', 'Could not load ' + chosen + ': ' + error.message, true);
  }
}

$('#reload-actors').addEventListener('click', loadActors);
$('#reload-actor').addEventListener('click', showActor);
window.addEventListener('hashchange', showActor);
loadActors();
showActor();
`;

/** The tab's icon: the synced mark. */
export const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><circle cx="8" cy="8" r="7" fill="#2e9e4f"/></svg>
`;
