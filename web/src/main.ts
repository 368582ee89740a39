// The terracube Browser: who is asking, the map, the search and the layer panels, wired together.
import { call } from "./api";
import { startSession } from "./account";
import { ChartPanel } from "./chart";
import { CodePanel } from "./code";
import { ComparePanel } from "./compare";
import { DownloadPanel } from "./download";
import { JobsPanel } from "./jobs";
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
    terracube?: {
      map: MapView; search: SearchPanel; layers: LayerPanel; ready: boolean;
      compare?: ComparePanel; code?: CodePanel; chart?: ChartPanel; download?: DownloadPanel; jobs?: JobsPanel;
      timelapse?: TimelapsePanel;
    };
  }
}

async function main(): Promise<void> {
  const config = await call<PageConfig>("/browser/config.json").catch(() => ({ basemap: null }) as PageConfig);
  const map = new MapView(byId("map"), config.basemap);
  const layers = new LayerPanel(map);
  const search = new SearchPanel(map, (state) => layers.searchChanged(state));
  const compare = new ComparePanel(map, layers, config.basemap);
  const code = new CodePanel(layers, compare);
  const jobs = new JobsPanel();
  const chart = new ChartPanel(layers, search);
  const download = new DownloadPanel(layers, search, jobs);
  window.terracube = { map, search, layers, compare, code, chart, download, jobs, ready: false };
  window.terracube.timelapse = new TimelapsePanel(map, search, layers);
  const [loggedIn] = await Promise.all([startSession(), map.ready()]); // collections are public: the search works before a login
  if (loggedIn) void jobs.refresh();
  else jobs.needsLogin();
  await search.load();
  window.terracube.ready = true;
}

main().catch((error) => showError(error, "The page could not start"));
