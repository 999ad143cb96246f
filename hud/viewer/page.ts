/**
 * The viewer page, embedded as a string so it is served the same from source (tsx) and from `dist/`
 * (tsc does not copy .html files). One static page, inline CSS and JS, no libraries.
 *
 * Wire protocol on the WebSocket at `/ws` (see server.ts):
 * - text, JSON: {type:'hello', source}, {type:'layout', layout} (layout.ts ViewerLayout),
 *   {type:'stats', ...} every half second, {type:'blank', reason} when the HUD output went black.
 * - binary: [u8 kind][u32 LE header length][header JSON][image]: kind 1 = HUD panel PNG
 *   (header {sequence, tCaptureNs, latencyMs, sentAtMs}), kind 2 = camera JPEG (header {tCaptureNs, sentAtMs}).
 *
 * Drawing: the camera image fills the canvas (camera resolution); each plane's panel region is drawn
 * through its footprint grid (two affine triangles per cell) onto a HUD layer, which is added onto
 * the camera with 'lighter' (HUD black = no light = transparent). `window.__arhudStats` exposes the
 * counters tests wait for.
 */

/** WebSocket path of the viewer. */
export const VIEWER_WS_PATH = '/ws';
/** Binary message kinds. */
export const WS_KIND_HUD_PNG = 1;
export const WS_KIND_CAMERA_JPEG = 2;

export const VIEWER_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>arhud viewer</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  html, body { margin: 0; background: #111; color: #ddd; font: 13px/1.4 system-ui, sans-serif; }
  header { padding: 6px 10px; display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap; }
  header b { color: #fff; font-size: 15px; }
  #state.ok { color: #7d7; } #state.bad { color: #f77; }
  main { padding: 0 10px; }
  #view, #zoom { display: block; max-width: 100%; height: auto; background: #000; }
  #zoomLabel { margin-top: 8px; color: #aaa; }
  #charts { display: flex; gap: 12px; flex-wrap: wrap; margin: 8px 0; }
  .chart { background: #1a1a1a; border: 1px solid #333; }
  #notes { color: #aaa; margin: 4px 0 12px; padding-left: 18px; }
  .legend span { margin-right: 12px; }
</style>
</head>
<body>
<header>
  <b>arhud viewer</b>
  <span id="source">connecting...</span>
  <span id="state" class="bad">disconnected</span>
  <span id="counters"></span>
</header>
<main>
  <canvas id="view" width="1280" height="720"></canvas>
  <div class="legend" id="zoomLabel">HUD region, zoomed</div>
  <canvas id="zoom" width="960" height="300"></canvas>
  <div id="charts">
    <div><div class="legend"><span style="color:#6f6">HUD fps</span><span style="color:#6af">camera fps</span></div>
      <canvas id="fpsChart" class="chart" width="480" height="140"></canvas></div>
    <div><div class="legend"><span style="color:#fa4" id="latencyLabel">capture to display ms</span><span style="color:#c8f">server to page ms</span></div>
      <canvas id="latencyChart" class="chart" width="480" height="140"></canvas></div>
  </div>
  <ul id="notes"></ul>
</main>
<script>
(function () {
  'use strict';
  var HISTORY = 120;
  var canvas = document.getElementById('view');
  var ctx = canvas.getContext('2d');
  var hudLayer = document.createElement('canvas');
  var hudCtx = hudLayer.getContext('2d');
  var stats = {
    connected: false, hudFramesReceived: 0, hudFramesDrawn: 0, cameraFramesReceived: 0, cameraFramesDrawn: 0,
    blank: false, blankDrawn: false, blanks: 0, layout: null, layoutVersion: 0, hudDrawnLayoutVersion: -1, lastHud: null, server: null, viewerLatencyMs: NaN, draws: 0, errors: 0
  };
  window.__arhudStats = stats;
  var layout = null, cameraBitmap = null, hudBitmap = null, hudHeader = null;
  var hudFresh = false, cameraFresh = false, drawScheduled = false;
  var hudArrival = 0, cameraArrival = 0, hudShownArrival = 0, cameraShownArrival = 0;
  var history = { hudFps: [], cameraFps: [], latencyMs: [], viewerMs: [] };
  var viewerLatencySum = 0, viewerLatencyCount = 0;
  var decoder = new TextDecoder();

  function text(id, value) { document.getElementById(id).textContent = value; }

  function connect() {
    var ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '${VIEWER_WS_PATH}');
    ws.binaryType = 'arraybuffer';
    ws.onopen = function () { stats.connected = true; text('state', 'connected'); document.getElementById('state').className = 'ok'; };
    ws.onclose = function () {
      stats.connected = false; text('state', 'disconnected (retrying)'); document.getElementById('state').className = 'bad';
      setTimeout(connect, 1000);
    };
    ws.onmessage = function (event) {
      try {
        if (typeof event.data === 'string') onJson(JSON.parse(event.data));
        else onBinary(event.data);
      } catch (error) { stats.errors++; console.error(error); }
    };
  }

  function onJson(message) {
    if (message.type === 'hello') {
      text('source', message.source.kind + ': ' + message.source.description);
      text('latencyLabel', message.source.kind === 'live' ? 'capture to display ms' : 'capture to output ms (recorded)');
    } else if (message.type === 'layout') {
      layout = message.layout; stats.layout = layout; stats.layoutVersion++;
      canvas.width = layout.camera.widthPx; canvas.height = layout.camera.heightPx;
      hudLayer.width = canvas.width; hudLayer.height = canvas.height;
      var notes = document.getElementById('notes');
      notes.innerHTML = '';
      layout.notes.forEach(function (note) { var li = document.createElement('li'); li.textContent = note; notes.appendChild(li); });
      scheduleDraw();
    } else if (message.type === 'stats') {
      stats.server = message;
      push(history.hudFps, message.hudFps); push(history.cameraFps, message.cameraFps);
      push(history.latencyMs, message.latencyMs);
      stats.viewerLatencyMs = viewerLatencyCount > 0 ? viewerLatencySum / viewerLatencyCount : NaN;
      push(history.viewerMs, stats.viewerLatencyMs);
      viewerLatencySum = 0; viewerLatencyCount = 0;
      drawChart('fpsChart', [history.hudFps, history.cameraFps], ['#6f6', '#6af'], 'fps');
      drawChart('latencyChart', [history.latencyMs, history.viewerMs], ['#fa4', '#c8f'], 'ms');
      text('counters', 'HUD ' + fmt(message.hudFps) + ' fps, camera ' + fmt(message.cameraFps) + ' fps, latency ' + fmt(message.latencyMs) +
        ' ms, frames ' + message.hudFrames + (message.blank ? ', HUD BLANK' : '') + (stats.lastHud && stats.lastHud.degraded ? ', DEGRADED' : ''));
    } else if (message.type === 'blank') {
      stats.blank = true; stats.blanks++; stats.blankDrawn = false;
      hudShownArrival = hudArrival + 1; // HUD images sent before the blank and still decoding are dropped
      if (hudBitmap) { hudBitmap.close(); hudBitmap = null; }
      scheduleDraw();
    }
  }

  function onBinary(buffer) {
    var view = new DataView(buffer);
    var kind = view.getUint8(0);
    var headerLength = view.getUint32(1, true);
    var header = JSON.parse(decoder.decode(new Uint8Array(buffer, 5, headerLength)));
    var blob = new Blob([new Uint8Array(buffer, 5 + headerLength)], { type: kind === ${WS_KIND_HUD_PNG} ? 'image/png' : 'image/jpeg' });
    var arrival = kind === ${WS_KIND_HUD_PNG} ? ++hudArrival : ++cameraArrival;
    createImageBitmap(blob).then(function (bitmap) {
      if (kind === ${WS_KIND_HUD_PNG}) {
        stats.hudFramesReceived++;
        if (arrival < hudShownArrival) { bitmap.close(); return; }
        hudShownArrival = arrival;
        if (hudBitmap) hudBitmap.close();
        hudBitmap = bitmap; hudHeader = header; hudFresh = true; stats.blank = false;
        stats.lastHud = { sequence: header.sequence, tCaptureNs: header.tCaptureNs, degraded: header.degraded, widthPx: bitmap.width, heightPx: bitmap.height };
      } else {
        stats.cameraFramesReceived++;
        if (arrival < cameraShownArrival) { bitmap.close(); return; }
        cameraShownArrival = arrival;
        if (cameraBitmap) cameraBitmap.close();
        cameraBitmap = bitmap; cameraFresh = true;
      }
      scheduleDraw();
    }, function (error) { stats.errors++; console.error('image decode failed', error); });
  }

  function scheduleDraw() {
    if (drawScheduled) return;
    drawScheduled = true;
    requestAnimationFrame(draw);
    setTimeout(draw, 100); // in case animation frames are throttled (background tab)
  }

  function draw() {
    if (!drawScheduled) return;
    drawScheduled = false;
    var w = canvas.width, h = canvas.height;
    ctx.globalCompositeOperation = 'source-over';
    if (cameraBitmap) ctx.drawImage(cameraBitmap, 0, 0, w, h);
    else { ctx.fillStyle = '#000'; ctx.fillRect(0, 0, w, h); }
    if (cameraFresh) { stats.cameraFramesDrawn++; cameraFresh = false; }
    if (hudBitmap && layout) {
      hudCtx.setTransform(1, 0, 0, 1, 0, 0);
      hudCtx.clearRect(0, 0, hudLayer.width, hudLayer.height);
      layout.planes.forEach(drawPlane);
      ctx.globalCompositeOperation = 'lighter';
      ctx.drawImage(hudLayer, 0, 0);
      ctx.globalCompositeOperation = 'source-over';
      stats.hudDrawnLayoutVersion = stats.layoutVersion;
      if (hudFresh) {
        stats.hudFramesDrawn++; hudFresh = false;
        viewerLatencySum += Date.now() - hudHeader.sentAtMs; viewerLatencyCount++;
      }
    }
    if (layout) drawZoom();
    stats.blankDrawn = stats.blank && !hudBitmap;
    stats.draws++;
  }

  /** The part of the view holding the HUD's footprint (both planes, plus a margin), scaled up. */
  function drawZoom() {
    var zoom = document.getElementById('zoom'), z = zoom.getContext('2d');
    var minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    layout.planes.forEach(function (plane) {
      for (var k = 0; k < plane.vertices.length; k += 4) {
        var x = plane.vertices[k + 2], y = plane.vertices[k + 3];
        if (!isFinite(x) || !isFinite(y)) continue;
        minX = Math.min(minX, x); maxX = Math.max(maxX, x); minY = Math.min(minY, y); maxY = Math.max(maxY, y);
      }
    });
    if (!(maxX > minX && maxY > minY)) return;
    var marginX = (maxX - minX) * 0.15, marginY = (maxY - minY) * 0.15;
    minX = Math.max(0, minX - marginX); maxX = Math.min(canvas.width, maxX + marginX);
    minY = Math.max(0, minY - marginY); maxY = Math.min(canvas.height, maxY + marginY);
    var width = zoom.width, height = Math.round(width * (maxY - minY) / (maxX - minX));
    if (zoom.height !== height) zoom.height = height;
    z.imageSmoothingQuality = 'high';
    z.drawImage(canvas, minX, minY, maxX - minX, maxY - minY, 0, 0, width, height);
    text('zoomLabel', 'HUD region, zoomed ' + (width / (maxX - minX)).toFixed(1) + 'x');
  }

  /** One plane: panel region -> camera footprint, two affine triangles per grid cell. */
  function drawPlane(plane) {
    var v = plane.vertices, cols = plane.cols, rows = plane.rows;
    for (var j = 0; j < rows; j++) {
      for (var i = 0; i < cols; i++) {
        var tl = (j * (cols + 1) + i) * 4, tr = tl + 4, bl = tl + (cols + 1) * 4, br = bl + 4;
        drawTriangle(v, tl, tr, br);
        drawTriangle(v, tl, br, bl);
      }
    }
  }

  function drawTriangle(v, p, q, r) {
    var s0x = v[p], s0y = v[p + 1], d0x = v[p + 2], d0y = v[p + 3];
    var s1x = v[q], s1y = v[q + 1], d1x = v[q + 2], d1y = v[q + 3];
    var s2x = v[r], s2y = v[r + 1], d2x = v[r + 2], d2y = v[r + 3];
    if (!isFinite(d0x) || !isFinite(d1x) || !isFinite(d2x) || !isFinite(d0y) || !isFinite(d1y) || !isFinite(d2y)) return;
    var det = (s1x - s0x) * (s2y - s0y) - (s2x - s0x) * (s1y - s0y);
    if (det === 0) return;
    // Affine A with d - d0 = A (s - s0): x' = a x + c y + e, y' = b x + d y + f (canvas setTransform order).
    var a = ((d1x - d0x) * (s2y - s0y) - (d2x - d0x) * (s1y - s0y)) / det;
    var c = ((d2x - d0x) * (s1x - s0x) - (d1x - d0x) * (s2x - s0x)) / det;
    var b = ((d1y - d0y) * (s2y - s0y) - (d2y - d0y) * (s1y - s0y)) / det;
    var d = ((d2y - d0y) * (s1x - s0x) - (d1y - d0y) * (s2x - s0x)) / det;
    var e = d0x - a * s0x - c * s0y, f = d0y - b * s0x - d * s0y;
    // Clip to the destination triangle grown by half a pixel, so neighbouring cells leave no seam.
    var mx = (d0x + d1x + d2x) / 3, my = (d0y + d1y + d2y) / 3;
    hudCtx.save();
    hudCtx.beginPath();
    grow(hudCtx, d0x, d0y, mx, my, true); grow(hudCtx, d1x, d1y, mx, my, false); grow(hudCtx, d2x, d2y, mx, my, false);
    hudCtx.closePath();
    hudCtx.clip();
    hudCtx.setTransform(a, b, c, d, e, f);
    var sx = Math.max(0, Math.floor(Math.min(s0x, s1x, s2x)) - 1), sy = Math.max(0, Math.floor(Math.min(s0y, s1y, s2y)) - 1);
    var ex = Math.min(hudBitmap.width, Math.ceil(Math.max(s0x, s1x, s2x)) + 1), ey = Math.min(hudBitmap.height, Math.ceil(Math.max(s0y, s1y, s2y)) + 1);
    if (ex > sx && ey > sy) hudCtx.drawImage(hudBitmap, sx, sy, ex - sx, ey - sy, sx, sy, ex - sx, ey - sy);
    hudCtx.restore();
  }

  function grow(g, x, y, mx, my, first) {
    var dx = x - mx, dy = y - my, len = Math.sqrt(dx * dx + dy * dy) || 1;
    var gx = x + (dx / len) * 0.5, gy = y + (dy / len) * 0.5;
    if (first) g.moveTo(gx, gy); else g.lineTo(gx, gy);
  }

  function push(list, value) { list.push(typeof value === 'number' ? value : NaN); if (list.length > HISTORY) list.shift(); }
  function fmt(value) { return typeof value === 'number' && isFinite(value) ? value.toFixed(1) : 'n/a'; }

  /** A small line chart: series over the last HISTORY samples, y from 0 to the largest value. */
  function drawChart(id, series, colors, unit) {
    var chart = document.getElementById(id), g = chart.getContext('2d');
    var w = chart.width, h = chart.height, left = 40, bottom = 16, top = 8;
    g.clearRect(0, 0, w, h);
    var max = 1;
    series.forEach(function (s) { s.forEach(function (value) { if (isFinite(value) && value > max) max = value; }); });
    max = niceCeil(max);
    g.strokeStyle = '#333'; g.fillStyle = '#888'; g.font = '10px sans-serif'; g.lineWidth = 1;
    for (var k = 0; k <= 4; k++) {
      var y = top + (h - top - bottom) * (1 - k / 4);
      g.beginPath(); g.moveTo(left, y); g.lineTo(w - 4, y); g.stroke();
      g.fillText(String(Math.round((max * k) / 4 * 10) / 10), 2, y + 3);
    }
    g.fillText(unit + ', last ' + HISTORY / 2 + ' s', left, h - 3);
    series.forEach(function (s, index) {
      g.strokeStyle = colors[index]; g.lineWidth = 1.5; g.beginPath();
      var pen = false;
      s.forEach(function (value, i) {
        if (!isFinite(value)) { pen = false; return; }
        var x = left + ((w - 4 - left) * i) / (HISTORY - 1);
        var y = top + (h - top - bottom) * (1 - value / max);
        if (pen) g.lineTo(x, y); else g.moveTo(x, y);
        pen = true;
      });
      g.stroke();
    });
  }

  function niceCeil(value) {
    var p = Math.pow(10, Math.floor(Math.log10(value)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * p >= value) return steps[i] * p;
    return 10 * p;
  }

  connect();
})();
</script>
</body>
</html>
`;
