// A web map as a user writes one: Leaflet, one XYZ layer from a terracube service.
// The query string says which: ?tiles=<the service's url>&lat=..&lon=..&zoom=..&attribution=..
// window.mapState tells the test what happened: every tile Leaflet asked for, and whether the
// layer's `load` event came (all visible tiles are in).
(function () {
  const query = new URLSearchParams(window.location.search);
  const state = { loaded: false, tiles: [], errors: [] };
  window.mapState = state;

  const map = L.map("map", { center: [Number(query.get("lat")), Number(query.get("lon"))], zoom: Number(query.get("zoom")) });
  map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
  const layer = L.tileLayer(query.get("tiles"), { maxZoom: 18, attribution: query.get("attribution") || "" });
  layer.on("tileloadstart", (event) => state.tiles.push(event.tile.src));
  layer.on("tileerror", (event) => state.errors.push(event.tile.src));
  layer.on("load", () => { state.loaded = true; });  // every tile of the view has loaded
  layer.addTo(map);
  window.terracubeMap = map;
})();
