// "See the code": the process graph behind a layer (pretty-printed JSON, as POST /result and the openEO
// Web Editor take it) and the same request as a Python program with the openeo client, each with a
// Copy button. The layers: the one on the map, and compare's A and B.
import { API_ROOT } from "./api";
import { storedSession } from "./auth";
import type { ComparePanel } from "./compare";
import type { LayerGraph } from "./graphs";
import type { LayerPanel } from "./layers";
import { pythonCode } from "./python";
import { byId } from "./ui";

export class CodePanel {
  private choices: { label: string; layer: LayerGraph }[] = [];

  constructor(private readonly layers: LayerPanel, private readonly compare: ComparePanel) {
    layers.shown.push(() => this.refresh(0));
    compare.changed.push(() => this.refresh());
    byId("code-layer").addEventListener("change", () => this.show());
    byId("copy-graph").addEventListener("click", () => void this.copy("code-graph"));
    byId("copy-python").addEventListener("click", () => void this.copy("code-python"));
  }

  /** The layers there is code for; ``pick`` selects one (by default, the one selected before). */
  refresh(pick?: number): void {
    const select = byId<HTMLSelectElement>("code-layer");
    const before = this.choices[select.selectedIndex]?.layer;
    const choices: { label: string; layer: LayerGraph }[] = [];
    const onMap = this.layers.status.layer;
    if (onMap) choices.push({ label: `On the map: ${onMap.title}`, layer: onMap });
    for (const which of ["a", "b"] as const) {
      const slot = this.compare.slots[which];
      if (slot) choices.push({ label: `${which.toUpperCase()}: ${slot.layer.title}`, layer: slot.layer });
    }
    this.choices = choices;
    select.replaceChildren(...choices.map((c) => new Option(c.label)));
    const again = choices.findIndex((c) => c.layer === before);
    select.selectedIndex = pick ?? (again >= 0 ? again : 0);
    byId("code-empty").hidden = choices.length > 0;
    byId("code-body").hidden = choices.length === 0;
    this.show();
  }

  private show(): void {
    const layer = this.choices[byId<HTMLSelectElement>("code-layer").selectedIndex]?.layer;
    byId("code-copied").textContent = "";
    if (!layer) return;
    byId("code-graph").textContent = JSON.stringify({ process_graph: layer.graph }, null, 2);
    const python = pythonCode(layer, { server: API_ROOT, logIn: storedSession() !== null });
    byId("code-python").textContent = python ?? "# This layer was not made by this page: see its process graph above.";
  }

  /** To the clipboard; where the page may not write there (http on another host), select the text for Ctrl+C. */
  private async copy(id: string): Promise<void> {
    const block = byId(id);
    const said = byId("code-copied");
    try {
      await navigator.clipboard.writeText(block.textContent ?? "");
      said.textContent = id === "code-graph" ? "The process graph is copied." : "The Python code is copied.";
    } catch {
      const range = document.createRange();
      range.selectNodeContents(block);
      const selection = window.getSelection();
      selection?.removeAllRanges();
      selection?.addRange(range);
      block.focus();
      said.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
    }
  }
}
