// Band maths typed as a formula, e.g. "(B08 - B04) / (B08 + B04)", turned into an openEO callback.
// The grammar: numbers, band names, + - * /, unary minus, parentheses. Everything a person can get wrong
// is a FormulaError whose message says what and where, before any request is sent.

export class FormulaError extends Error {}

type Node =
  | { kind: "number"; value: number }
  | { kind: "band"; name: string }
  | { kind: "negate"; operand: Node }
  | { kind: "binary"; op: "+" | "-" | "*" | "/"; left: Node; right: Node };

interface Token {
  kind: "number" | "name" | "op" | "(" | ")" | "end";
  text: string;
  at: number; // 1-based character position, for messages
}

const PROCESS = { "+": "add", "-": "subtract", "*": "multiply", "/": "divide" } as const;

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  const pattern = /\s*(?:(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|([-+*/])|([()])|(\S))/y;
  let match: RegExpExecArray | null;
  while (pattern.lastIndex < text.length && (match = pattern.exec(text))) {
    const at = match.index + match[0].length - match[0].trimStart().length + 1;
    if (match[1] !== undefined) tokens.push({ kind: "number", text: match[1], at });
    else if (match[2] !== undefined) tokens.push({ kind: "name", text: match[2], at });
    else if (match[3] !== undefined) tokens.push({ kind: "op", text: match[3], at });
    else if (match[4] !== undefined) tokens.push({ kind: match[4] as "(" | ")", text: match[4], at });
    else if (match[5] !== undefined) throw new FormulaError(`"${match[5]}" at character ${at} is not allowed: use band names, numbers, + - * / and parentheses.`);
  }
  tokens.push({ kind: "end", text: "", at: text.length + 1 });
  return tokens;
}

/** The formula's syntax tree, its band names checked against ``bands`` (case-insensitive, given back as the collection spells them). */
export function parseFormula(text: string, bands: string[]): Node {
  if (!text.trim()) throw new FormulaError("The formula is empty: type one, e.g. (B08 - B04) / (B08 + B04).");
  const tokens = tokenize(text);
  const byName = new Map(bands.map((b) => [b.toLowerCase(), b]));
  let position = 0;
  const peek = () => tokens[position];
  const next = () => tokens[position++];
  const describe = (t: Token) => (t.kind === "end" ? "the end of the formula" : `"${t.text}" at character ${t.at}`);

  function expression(): Node {
    let node = term();
    while (peek().kind === "op" && (peek().text === "+" || peek().text === "-")) {
      const op = next().text as "+" | "-";
      node = { kind: "binary", op, left: node, right: term() };
    }
    return node;
  }
  function term(): Node {
    let node = factor();
    while (peek().kind === "op" && (peek().text === "*" || peek().text === "/")) {
      const op = next().text as "*" | "/";
      node = { kind: "binary", op, left: node, right: factor() };
    }
    return node;
  }
  function factor(): Node {
    const token = next();
    if (token.kind === "op" && token.text === "-") return { kind: "negate", operand: factor() };
    if (token.kind === "op" && token.text === "+") return factor();
    if (token.kind === "number") return { kind: "number", value: Number(token.text) };
    if (token.kind === "name") {
      const band = byName.get(token.text.toLowerCase());
      if (!band) throw new FormulaError(`"${token.text}" at character ${token.at} is not a band of this collection. Its bands: ${bands.join(", ")}.`);
      return { kind: "band", name: band };
    }
    if (token.kind === "(") {
      const inner = expression();
      const close = next();
      if (close.kind !== ")") throw new FormulaError(`A ")" is missing: expected it before ${describe(close)} to close the "(" at character ${token.at}.`);
      return inner;
    }
    if (token.kind === ")") throw new FormulaError(`The ")" at character ${token.at} closes nothing, or a value is missing before it.`);
    throw new FormulaError(`A value (a band name or a number) is missing before ${describe(token)}.`);
  }

  const tree = expression();
  const rest = peek();
  if (rest.kind !== "end") {
    throw new FormulaError(rest.kind === ")" ? `The ")" at character ${rest.at} closes nothing.` : `An operator (+ - * /) is missing before ${describe(rest)}.`);
  }
  if (!usesBand(tree)) throw new FormulaError("The formula uses no band: name at least one, e.g. B08.");
  return tree;
}

function usesBand(node: Node): boolean {
  if (node.kind === "band") return true;
  if (node.kind === "negate") return usesBand(node.operand);
  if (node.kind === "binary") return usesBand(node.left) || usesBand(node.right);
  return false;
}

/** The bands a formula reads, in the order they first appear (what load_collection loads). */
export function bandsOf(node: Node, found: string[] = []): string[] {
  if (node.kind === "band" && !found.includes(node.name)) found.push(node.name);
  if (node.kind === "negate") bandsOf(node.operand, found);
  if (node.kind === "binary") {
    bandsOf(node.left, found);
    bandsOf(node.right, found);
  }
  return found;
}

type Argument = number | { from_node: string } | { from_parameter: string };
export type ProcessGraph = Record<string, { process_id: string; arguments: Record<string, unknown>; result?: boolean }>;

/** The reducer of ``reduce_dimension(dimension="bands")``: one node per band read and per operator. */
export function toCallback(tree: Node): ProcessGraph {
  const graph: ProcessGraph = {};
  const bandNodes = new Map<string, string>();
  let count = 0;
  const add = (processId: string, args: Record<string, unknown>): { from_node: string } => {
    const id = `${processId}${++count}`;
    graph[id] = { process_id: processId, arguments: args };
    return { from_node: id };
  };
  const visit = (node: Node): Argument => {
    switch (node.kind) {
      case "number":
        return node.value;
      case "band": {
        if (!bandNodes.has(node.name)) bandNodes.set(node.name, add("array_element", { data: { from_parameter: "data" }, label: node.name }).from_node);
        return { from_node: bandNodes.get(node.name)! };
      }
      case "negate":
        return add("multiply", { x: -1, y: visit(node.operand) });
      case "binary":
        return add(PROCESS[node.op], { x: visit(node.left), y: visit(node.right) });
    }
  };
  const result = visit(tree);
  if (typeof result === "number" || !("from_node" in result)) throw new FormulaError("The formula uses no band.");
  graph[result.from_node].result = true;
  return graph;
}
