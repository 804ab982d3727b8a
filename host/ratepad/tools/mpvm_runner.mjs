// mpvm_runner.mjs — serve one MicroPython WebAssembly VM over line-delimited JSON.
//
// Usage: node mpvm_runner.mjs --package-dir=DIR [--heap-bytes=N] [--sys-path=JSON_LIST]
//
// DIR is node_modules/@micropython/micropython-webassembly-pyscript.  N is the initial GC
// heap (the port grows the heap on demand).  sys.path becomes ["", ".frozen", *JSON_LIST];
// ".frozen" holds the port's frozen modules (asyncio).  The VM is loaded once; then every
// stdin line is one JSON request and gets exactly one JSON response line on stdout.  A first line {"ok":true,"op":"ready",...} announces that the VM is up.
// Anything MicroPython prints (its stdout *and* stderr, in order, like a board's REPL
// console) is captured and returned in the response, never written to our stdout.
//
// Requests (an optional "id" is echoed back):
//   {"op":"exec","code":SRC}                 run SRC in the persistent __main__ globals
//   {"op":"exec","code":SRC,"async":true}     same, with top-level await (runPythonAsync)
//   {"op":"eval","expr":SRC}                  -> {"json": json.dumps(eval(SRC))} (VM's json)
//   {"op":"write","path":P,"data_b64":B}      write a file, creating parent directories
//   {"op":"mount","src_files":{P: B, ...}}    write many files, creating parent directories
//   {"op":"read","path":P}                    -> {"data_b64": B}
// Responses: {"ok":true, ...} or {"ok":false,"kind":K,"error":NAME,...} where K is
//   "python"   a Python exception escaped: "error" is its type, "traceback" the full text;
//   "fs"       a filesystem error: "error" is the errno code, e.g. "ENOENT";
//   "request"  a malformed request;  "js"  any other JavaScript error.
// exec/eval responses always carry "stdout" (the console text captured for the request).
//
// After every exec/eval the heap lock depth is reset to 0: in this port an exception that
// escapes while micropython.heap_lock() is active otherwise wedges the VM in a busy loop.

import path from "node:path";
import readline from "node:readline";
import { pathToFileURL } from "node:url";

// Keep the protocol stream clean: anything logged through console goes to stderr.
const protocolOut = process.stdout;
for (const name of ["log", "info", "debug", "warn"]) {
  console[name] = (...args) => console.error(...args);
}

function parseArgs(argv) {
  const opts = { heapBytes: 1024 * 1024, packageDir: null, sysPath: ["/lib"] };
  for (const arg of argv) {
    const eq = arg.indexOf("=");
    const [key, value] = eq < 0 ? [arg, ""] : [arg.slice(0, eq), arg.slice(eq + 1)];
    if (key === "--heap-bytes") opts.heapBytes = Number.parseInt(value, 10);
    else if (key === "--package-dir") opts.packageDir = value;
    else if (key === "--sys-path") opts.sysPath = JSON.parse(value);
    else throw new Error(`unknown argument: ${arg}`);
  }
  if (!opts.packageDir) throw new Error("--package-dir is required");
  if (!Number.isInteger(opts.heapBytes) || opts.heapBytes <= 0) {
    throw new Error("--heap-bytes must be a positive integer");
  }
  return opts;
}

function send(obj) {
  protocolOut.write(JSON.stringify(obj) + "\n");
}

// Python support code, run once at start-up.  It defines the exec/eval wrappers as
// closures over __main__'s globals and removes its own names from __main__ afterwards.
const BOOTSTRAP = (sysPath) => `
def __mpvm_bootstrap():
    import builtins, json, micropython, sys
    _compile, _eval, _exec = compile, eval, exec  # immune to user globals of those names
    sys.path.clear()
    sys.path.extend(${JSON.stringify(["", ".frozen", ...sysPath])})
    def _no_input(prompt=None):
        raise EOFError("the VM has no stdin")
    builtins.input = _no_input  # the port's input() would block forever
    g = globals()
    def reset_heap_lock():
        micropython.heap_lock()
        depth = micropython.heap_unlock()
        while depth > 0:
            depth = micropython.heap_unlock()
    def __mpvm_run(src):
        try:
            _exec(_compile(src, "<stdin>", "exec"), g)
        finally:
            reset_heap_lock()
    def __mpvm_eval(src):
        try:
            return json.dumps(_eval(_compile(src, "<stdin>", "eval"), g))
        finally:
            reset_heap_lock()
    return __mpvm_run, __mpvm_eval, reset_heap_lock
__mpvm_run, __mpvm_eval, __mpvm_reset = __mpvm_bootstrap()
del __mpvm_bootstrap
`;
const WRAPPER_FRAME = /^ {2}File "[^"\n]*", line \d+, in __mpvm_(?:run|eval)\n/gm;

const b64decode = (s) => new Uint8Array(Buffer.from(s, "base64"));

function ensureParentDir(FS, filePath) {
  const dir = path.posix.dirname(filePath);
  if (dir !== "/" && dir !== ".") FS.mkdirTree(dir);
}

class RequestError extends Error {
  name = "RequestError";
}

function checkPath(p) {
  if (typeof p !== "string" || !p.startsWith("/")) {
    throw new RequestError(`path must be an absolute VM path, got ${JSON.stringify(p)}`);
  }
  return p;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const entry = path.join(opts.packageDir, "micropython.mjs");
  const { loadMicroPython } = await import(pathToFileURL(entry).href);

  let captured = []; // console bytes (the port hands them over one at a time)
  const capture = (bytes) => {
    for (const byte of bytes) captured.push(byte);
  };
  const takeOutput = () => {
    const text = new TextDecoder().decode(new Uint8Array(captured));
    captured = [];
    return text;
  };

  const mp = await loadMicroPython({
    heapsize: opts.heapBytes,
    linebuffer: false,
    stdin: () => null, // EOF: never read the protocol stream
    stdout: capture,
    stderr: capture,
  });
  for (const dir of opts.sysPath) {
    if (typeof dir === "string" && dir.startsWith("/")) mp.FS.mkdirTree(dir);
  }
  mp.runPython(BOOTSTRAP(opts.sysPath));
  const pyRun = mp.globals.get("__mpvm_run");
  const pyEval = mp.globals.get("__mpvm_eval");
  const pyReset = mp.globals.get("__mpvm_reset");
  for (const name of ["__mpvm_run", "__mpvm_eval", "__mpvm_reset"]) mp.globals.delete(name);
  const version = JSON.parse(pyEval("__import__('sys').implementation.version[:3]")).join(".");
  takeOutput();

  const handlers = {
    async exec(req) {
      if (typeof req.code !== "string") throw new RequestError("exec needs a string 'code'");
      if (req.async) {
        try {
          await mp.runPythonAsync(req.code);
        } finally {
          pyReset();
        }
      } else {
        pyRun(req.code);
      }
      return {};
    },
    eval(req) {
      if (typeof req.expr !== "string") throw new RequestError("eval needs a string 'expr'");
      return { json: pyEval(req.expr) };
    },
    write(req) {
      const p = checkPath(req.path);
      ensureParentDir(mp.FS, p);
      mp.FS.writeFile(p, b64decode(req.data_b64 ?? ""));
      return {};
    },
    mount(req) {
      const files = req.src_files;
      if (files === null || typeof files !== "object") {
        throw new RequestError("mount needs an object 'src_files'");
      }
      for (const [p, data] of Object.entries(files)) {
        checkPath(p);
        ensureParentDir(mp.FS, p);
        mp.FS.writeFile(p, b64decode(data));
      }
      return { count: Object.keys(files).length };
    },
    read(req) {
      const data = mp.FS.readFile(checkPath(req.path));
      return { data_b64: Buffer.from(data).toString("base64") };
    },
  };

  send({ ok: true, op: "ready", version, heap_bytes: opts.heapBytes });

  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    if (line.trim() === "") continue;
    let req = {};
    let resp;
    try {
      const parsed = JSON.parse(line);
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
        throw new RequestError("a request must be a JSON object");
      }
      req = parsed;
      const handler = Object.hasOwn(handlers, req.op) ? handlers[req.op] : undefined;
      if (!handler) throw new RequestError(`unknown op ${JSON.stringify(req.op)}`);
      resp = { ok: true, ...(await handler(req)) };
    } catch (e) {
      resp = errorResponse(e);
    }
    if (req.op === "exec" || req.op === "eval") resp.stdout = takeOutput();
    if (req.id !== undefined) resp.id = req.id;
    send(resp);
  }
}

function errorResponse(e) {
  if (e?.name === "PythonError") {
    const traceback = String(e.message).replace(WRAPPER_FRAME, "");
    return { ok: false, kind: "python", error: String(e.type), traceback };
  }
  if (e?.name === "ErrnoError") {
    return { ok: false, kind: "fs", error: e.code ?? `errno ${e.errno}`, message: e.message };
  }
  if (e instanceof RequestError || e instanceof SyntaxError) {
    return { ok: false, kind: "request", error: e.name, message: e.message };
  }
  return {
    ok: false,
    kind: "js",
    error: e?.name ?? "Error",
    message: String(e?.message ?? e),
    stack: e?.stack,
  };
}

process.on("unhandledRejection", (reason) => {
  console.error("mpvm_runner: unhandled rejection:", reason);
});

main().catch((e) => {
  console.error("mpvm_runner: fatal:", e?.stack ?? e);
  process.exitCode = 1;
});
