// The live dashboard's page: each `charts` event from the server (GET events) carries the
// charts redrawn from the run folders; they replace the ones shown.
'use strict';

const live = document.getElementById('live');
const status = document.getElementById('live-status');
const source = new EventSource('events');

source.addEventListener('charts', (e) => {
  const message = JSON.parse(e.data);
  if (String(message.version) !== live.dataset.version) {
    live.innerHTML = message.html;
    live.dataset.version = String(message.version);
  }
  status.textContent = `${message.runs.length} run(s): ${message.runs.join(', ')}; updated ${new Date().toLocaleTimeString()}`;
});
source.addEventListener('error', () => {
  status.textContent = 'The connection to the dashboard server is lost; reconnecting…';
});
