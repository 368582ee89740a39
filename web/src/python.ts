// A layer as a Python program with the official openEO client (the `openeo` package): the same
// collection, extents and bands, the cloud mask, the band maths as client expressions (which the
// client turns into the same reduce_dimension callback), the reduction over time, and a GeoTIFF
// downloaded through POST /result. Written from the layer's plan (graphs.ts), as its graph is.
import type { BBox } from "./map";
import { SCL_BAND, SCL_CLOUD_CLASSES, type DifferencePlan, type FormulaTree, type LayerGraph, type LayerPlan } from "./graphs";

export interface PythonOptions {
  server: string; // the API's root URL, as openeo.connect wants it
  logIn: boolean; // accounts mode: the page logged in, so the program logs in too
}

/** A Python literal: None, numbers as JavaScript prints them (shortest round trip, as Python reads them), strings as JSON. */
function literal(value: unknown): string {
  if (value === null || value === undefined) return "None";
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "float('nan')";
  if (typeof value === "boolean") return value ? "True" : "False";
  if (Array.isArray(value)) return `[${value.map(literal).join(", ")}]`;
  if (typeof value === "object") return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${literal(v)}`).join(", ")}}`;
  return JSON.stringify(value);
}

const TAKEN = new Set(["openeo", "connection", "cube", "scl", "clouds", "a", "b", "difference", "None", "True", "False"]);
const KEYWORDS = new Set(("and as assert async await break class continue def del elif else except finally for from global if import in is " +
  "lambda nonlocal not or pass raise return try while with yield").split(" "));

/** A band's variable: its name in lower case, made a Python identifier that clashes with nothing here. */
function variable(band: string, prefix: string): string {
  let name = band.toLowerCase().replace(/[^a-z0-9_]/g, "_");
  if (/^[0-9]/.test(name)) name = `_${name}`;
  if (TAKEN.has(name) || KEYWORDS.has(name)) name = `${name}_band`;
  return prefix + name;
}

const PRECEDENCE = { "+": 1, "-": 1, "*": 2, "/": 2 } as const;

/** The formula as a Python expression over band variables; parentheses keep the tree's order of operations exactly. */
function expression(node: FormulaTree, prefix: string): string {
  const wrap = (child: FormulaTree, tight: boolean, level: number) => {
    const text = expression(child, prefix);
    const childLevel = child.kind === "binary" ? PRECEDENCE[child.op] : 3;
    return childLevel < level || (tight && childLevel === level) ? `(${text})` : text;
  };
  switch (node.kind) {
    case "number":
      return String(node.value);
    case "band":
      return variable(node.name, prefix);
    case "negate":
      return `-${wrap(node.operand, false, 3)}`;
    case "binary": {
      const level = PRECEDENCE[node.op];
      // The right operand in brackets at the same level too: a - (b - c), and a + (b + c) adds in that order.
      return `${wrap(node.left, false, level)} ${node.op} ${wrap(node.right, true, level)}`;
    }
  }
}

function formulaBands(node: FormulaTree, found: string[] = []): string[] {
  if (node.kind === "band" && !found.includes(node.name)) found.push(node.name);
  if (node.kind === "negate") formulaBands(node.operand, found);
  if (node.kind === "binary") {
    formulaBands(node.left, found);
    formulaBands(node.right, found);
  }
  return found;
}

function extent(area: BBox | null): string {
  if (!area) return "None";
  const [west, south, east, north] = area;
  return literal({ west, south, east, north });
}

/** Lines that leave the plan's result in the variable ``name`` (band variables prefixed with ``prefix``). */
function planLines(plan: LayerPlan, name: string, prefix: string, reduceTime: string | null): string[] {
  const lines = [
    `${name} = connection.load_collection(`,
    `    ${literal(plan.collection)},`,
    `    spatial_extent=${extent(plan.area)},`,
    `    temporal_extent=${literal(plan.temporalExtent)},  # the end day is excluded`,
    `    bands=${literal(plan.bands)},`,
    ")",
  ];
  const cloudTest = (scl: string) => SCL_CLOUD_CLASSES.map((c) => `(${scl} == ${c})`).join(" | ");
  if (plan.masked) {
    lines.push(
      `# Clouds: SCL's cloud shadow (3), cloud medium (8) and high probability (9), thin cirrus (10); masked pixels have no data`,
      `${prefix}scl = ${name}.band(${literal(SCL_BAND)})`,
      `${prefix}clouds = ${cloudTest(`${prefix}scl`)}`,
      `${name} = ${name}.filter_bands(${literal(plan.masked)}).mask(${prefix}clouds)`,
    );
  }
  if (plan.clouds) {
    lines.push(
      `# 1 where SCL says cloud shadow (3), cloud medium (8) or high probability (9), thin cirrus (10); 0 elsewhere`,
      `${prefix}scl = ${name}.band(${literal(SCL_BAND)})`,
      `${name} = ${cloudTest(`${prefix}scl`)}`,
    );
  } else if (plan.formula) {
    for (const band of formulaBands(plan.formula)) lines.push(`${variable(band, prefix)} = ${name}.band(${literal(band)})`);
    lines.push(`${name} = ${expression(plan.formula, prefix)}`);
  }
  if (reduceTime) {
    const why = plan.reducer ? "" : "  # one image: the latest valid value (for one date, that date)";
    lines.push(`${name} = ${name}.reduce_dimension(dimension="t", reducer=${literal(reduceTime)})${why}`);
  }
  return lines;
}

function header(title: string, options: PythonOptions): string[] {
  return [
    `# ${title}: the terracube Browser's layer, with the openEO Python client (pip install openeo)`,
    "import openeo",
    "",
    `connection = openeo.connect(${literal(options.server)})`,
    ...(options.logIn ? ["connection.authenticate_oidc()  # logs in with this server's own accounts, as the Browser does"] : []),
    "",
  ];
}

/** Where a synchronous request is too large (PayloadTooLarge), the same as a batch job. */
function batchHint(name: string, file: string): string[] {
  return ["# Too large to wait for (PayloadTooLarge)? The same as a batch job:", `# ${name}.execute_batch(${file})`];
}

function fileName(title: string): string {
  const stem = title.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 60);
  return `${stem || "layer"}.tif`;
}

/** The layer as a Python program that downloads its GeoTIFF; null for a layer made elsewhere (no plan). */
export function pythonCode(layer: LayerGraph, options: PythonOptions): string | null {
  const plan = layer.plan;
  if (!plan) return null;
  const file = literal(fileName(layer.title));
  if ("a" in plan) return differenceCode(layer.title, plan, file, options);
  const lines = [...header(layer.title, options), ...planLines(plan, "cube", "", plan.reducer)];
  if (!plan.reducer) lines.push("# Several dates give one GeoTIFF band per date and band (2021-07-21_B04, ...); the map shows the latest.");
  lines.push(`cube.download(${file})  # a GeoTIFF, computed by POST /result`, ...batchHint("cube", file));
  return lines.join("\n") + "\n";
}

function differenceCode(title: string, plan: DifferencePlan, file: string, options: PythonOptions): string {
  return [
    ...header(title, options),
    "# A",
    ...planLines(plan.a, "a", "a_", plan.a.reducer ?? "last"),
    "",
    "# B",
    ...planLines(plan.b, "b", "b_", plan.b.reducer ?? "last"),
    "",
    "difference = b - a  # merge_cubes(b, a) with subtract as its overlap resolver: B − A at every pixel",
    `difference.download(${file})  # a GeoTIFF, computed by POST /result`,
    ...batchHint("difference", file),
  ].join("\n") + "\n";
}
