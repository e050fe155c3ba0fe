// The complaint's point on a Leaflet map. No tile layer is loaded unless one is configured on the
// element (data-tiles): the dashboard must work on an office network without internet.
(function () {
  var element = document.getElementById("map");
  if (!element || !window.L) { return; }
  var lat = parseFloat(element.dataset.lat), lon = parseFloat(element.dataset.lon);
  var map = L.map(element, { attributionControl: false }).setView([lat, lon], 16);
  if (element.dataset.tiles) { L.tileLayer(element.dataset.tiles, { maxZoom: 19 }).addTo(map); }
  L.circle([lat, lon], { radius: 60, color: "#0b5cab" }).addTo(map);
  L.marker([lat, lon]).addTo(map).bindPopup(element.dataset.label || "").openPopup();
  L.control.scale().addTo(map);
  element.dataset.ready = "1";
})();
