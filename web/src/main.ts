// The terracube Browser: who is asking, the map, the search and the layer panels, wired together.
import { call } from "./api";
import { startSession } from "./account";
import { LayerPanel } from "./layers";
import { MapView } from "./map";
import { SearchPanel } from "./search";
import { TimelapsePanel } from "./timelapse";
import { byId, showError } from "./ui";
import "./style.css";

interface PageConfig {
  basemap: string | null; // an XYZ URL the server's operator set (TERRACUBE_BROWSER_BASEMAP), or none
}

declare global {
  interface Window {
    // For people debugging the page and for the browser tests: the parts, and what they show.
    terracube?: { map: MapView; search: SearchPanel; layers: LayerPanel; timelapse?: TimelapsePanel; ready: boolean };
  }
}

async function main(): Promise<void> {
  const config = await call<PageConfig>("/browser/config.json").catch(() => ({ basemap: null }) as PageConfig);
  const map = new MapView(byId("map"), config.basemap);
  const layers = new LayerPanel(map);
  const search = new SearchPanel(map, (state) => layers.searchChanged(state));
  window.terracube = { map, search, layers, ready: false };
  window.terracube.timelapse = new TimelapsePanel(map, search, layers);
  await Promise.all([startSession(), map.ready()]); // collections are public: the search works before a login
  await search.load();
  window.terracube.ready = true;
}

main().catch((error) => showError(error, "The page could not start"));
