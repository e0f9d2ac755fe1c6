/* Maps with Leaflet. Coordinates are stored in WGS-84; when the tiles are GCJ-02 (AMap, Tianditu's
   Chinese layers: data-crs="gcj02") markers are shifted for display and a picked point is shifted
   back before it is stored. Without a tile server (data-tiles empty) the map still shows its
   markers on a plain background. The same conversion is in linli_web/geo.py (tested there). */
(function () {
  "use strict";
  var A = 6378245.0, EE = 0.00669342162296594323;

  function outOfChina(lat, lon) { return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271; }
  function tLat(x, y) {
    var r = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    r += (20 * Math.sin(6 * x * Math.PI) + 20 * Math.sin(2 * x * Math.PI)) * 2 / 3;
    r += (20 * Math.sin(y * Math.PI) + 40 * Math.sin(y / 3 * Math.PI)) * 2 / 3;
    r += (160 * Math.sin(y / 12 * Math.PI) + 320 * Math.sin(y * Math.PI / 30)) * 2 / 3;
    return r;
  }
  function tLon(x, y) {
    var r = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    r += (20 * Math.sin(6 * x * Math.PI) + 20 * Math.sin(2 * x * Math.PI)) * 2 / 3;
    r += (20 * Math.sin(x * Math.PI) + 40 * Math.sin(x / 3 * Math.PI)) * 2 / 3;
    r += (150 * Math.sin(x / 12 * Math.PI) + 300 * Math.sin(x / 30 * Math.PI)) * 2 / 3;
    return r;
  }
  function toGcj(lat, lon) {
    if (outOfChina(lat, lon)) return [lat, lon];
    var dLat = tLat(lon - 105, lat - 35), dLon = tLon(lon - 105, lat - 35);
    var radLat = lat / 180 * Math.PI, magic = Math.sin(radLat);
    magic = 1 - EE * magic * magic;
    var sqrtMagic = Math.sqrt(magic);
    dLat = (dLat * 180) / ((A * (1 - EE)) / (magic * sqrtMagic) * Math.PI);
    dLon = (dLon * 180) / (A / sqrtMagic * Math.cos(radLat) * Math.PI);
    return [lat + dLat, lon + dLon];
  }
  function toWgs(lat, lon) { // iterate: the inverse has no closed form
    var wLat = lat, wLon = lon;
    for (var i = 0; i < 6; i++) {
      var g = toGcj(wLat, wLon);
      wLat += lat - g[0]; wLon += lon - g[1];
    }
    return [wLat, wLon];
  }

  function init(el) {
    if (!window.L) return;
    var markers = JSON.parse(el.dataset.markers || "[]");
    // Without tiles and without markers a map shows nothing worth the space.
    if (!el.dataset.tiles && !markers.length) return;
    el.hidden = false;
    var block = el.closest("[data-map-block]");
    if (block) block.hidden = false;
    var gcj = el.dataset.crs === "gcj02";
    var show = function (lat, lon) { return gcj ? toGcj(lat, lon) : [lat, lon]; };
    var map = L.map(el, { attributionControl: !!el.dataset.tiles });
    if (el.dataset.tiles) {
      L.tileLayer(el.dataset.tiles, { maxZoom: 19, attribution: el.dataset.attribution || "" }).addTo(map);
    }
    var bounds = [];
    markers.forEach(function (m) {
      var at = show(m.lat, m.lon);
      // A kind (an area map's overdue / gap / covered / post) is a shape and a colour in the CSS.
      var icon = L.divIcon({ className: m.kind ? "pin pin-" + m.kind : "pin", iconSize: [18, 18] });
      L.marker(at, { icon: icon, title: m.name, alt: m.name, keyboard: true }).addTo(map).bindTooltip(m.label || m.name, { permanent: markers.length <= 6 });
      bounds.push(at);
    });
    if (bounds.length) map.fitBounds(bounds, { padding: [40, 40], maxZoom: 17 }); else map.setView([35, 105], 4);

    var form = el.closest("form") || document;
    var latInput = form.querySelector("[data-lat]"), lonInput = form.querySelector("[data-lon]");
    var picked = null;
    function pick(lat, lon) { // lat, lon in WGS-84
      if (latInput) latInput.value = lat.toFixed(6);
      if (lonInput) lonInput.value = lon.toFixed(6);
      var at = show(lat, lon);
      if (picked) picked.setLatLng(at); else picked = L.circleMarker(at, { radius: 10, weight: 3 }).addTo(map);
      map.setView(at, Math.max(map.getZoom(), 16));
    }
    if (latInput && latInput.value && lonInput.value) pick(parseFloat(latInput.value), parseFloat(lonInput.value));
    if (el.dataset.pick) {
      map.on("click", function (e) {
        var w = gcj ? toWgs(e.latlng.lat, e.latlng.lng) : [e.latlng.lat, e.latlng.lng];
        pick(w[0], w[1]);
      });
    }
    el._pick = pick;
  }

  function locate(button) {
    button.hidden = false;
    var block = button.closest("[data-map-block]");
    if (block) block.hidden = false;
    var status = document.querySelector("[data-locate-status]");
    button.addEventListener("click", function () {
      if (!navigator.geolocation) return;
      if (status) status.textContent = "…";
      navigator.geolocation.getCurrentPosition(function (pos) {
        var lat = pos.coords.latitude, lon = pos.coords.longitude; // the browser gives WGS-84
        var map = document.querySelector("[data-map]");
        var form = button.closest("form") || document;
        if (map && map._pick) map._pick(lat, lon);
        else {
          var la = form.querySelector("[data-lat]"), lo = form.querySelector("[data-lon]");
          if (la) la.value = lat.toFixed(6);
          if (lo) lo.value = lon.toFixed(6);
        }
        if (status) status.textContent = "✓";
        if (button.hasAttribute("data-submit")) form.submit();
      }, function () { if (status) status.textContent = "✗"; }, { enableHighAccuracy: true, timeout: 15000 });
    });
  }

  function start() {
    document.querySelectorAll("[data-map]").forEach(init);
    if (navigator.geolocation) document.querySelectorAll("[data-locate]").forEach(locate);
  }
  if (document.readyState !== "loading") start(); else document.addEventListener("DOMContentLoaded", start);
})();
