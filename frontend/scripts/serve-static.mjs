#!/usr/bin/env node
/**
 * Serve the static export (`out/`) the way the hub will: `/x/` → `x/index.html`,
 * `/x` → 308 to `/x/` when that is a folder, unknown paths → `404.html` with
 * status 404. For local checks and the Playwright smoke test only.
 *
 *   node scripts/serve-static.mjs [--root DIR] [--port N] [--host H]
 *
 * Port 0 (the default) picks a free port; the chosen URL is printed.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    root: { type: "string", default: path.join(here, "..", "out") },
    port: { type: "string", default: process.env.PORT ?? "0" },
    host: { type: "string", default: "127.0.0.1" },
  },
});
const root = path.resolve(values.root);

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".ico": "image/x-icon",
  ".webp": "image/webp",
  ".woff2": "font/woff2",
};

async function fileAt(p) {
  try {
    const s = await stat(p);
    return s.isFile() ? s : s.isDirectory() ? "dir" : null;
  } catch {
    return null;
  }
}

function send(res, status, file, size, method) {
  const ext = path.extname(file);
  const immutable = file.includes(`${path.sep}_next${path.sep}static${path.sep}`);
  res.writeHead(status, {
    "Content-Type": MIME[ext] ?? "application/octet-stream",
    "Content-Length": size,
    "Cache-Control": immutable ? "public, max-age=31536000, immutable" : "no-cache",
    "X-Content-Type-Options": "nosniff",
  });
  if (method === "HEAD") res.end();
  else createReadStream(file).pipe(res);
}

const server = http.createServer(async (req, res) => {
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { Allow: "GET, HEAD" }).end();
    return;
  }
  const url = new URL(req.url ?? "/", "http://localhost");
  let pathname;
  try {
    pathname = decodeURIComponent(url.pathname);
  } catch {
    res.writeHead(400).end();
    return;
  }
  const target = path.resolve(root, `.${pathname}`);
  if (target !== root && !target.startsWith(root + path.sep)) {
    res.writeHead(403).end();
    return;
  }
  const candidate = pathname.endsWith("/") ? path.join(target, "index.html") : target;
  const found = await fileAt(candidate);
  if (found && found !== "dir") {
    send(res, 200, candidate, found.size, req.method);
    return;
  }
  if (found === "dir" && (await fileAt(path.join(target, "index.html")))) {
    res.writeHead(308, { Location: `${url.pathname}/${url.search}` }).end();
    return;
  }
  const notFound = path.join(root, "404.html");
  const nf = await fileAt(notFound);
  if (nf && nf !== "dir") send(res, 404, notFound, nf.size, req.method);
  else res.writeHead(404, { "Content-Type": "text/plain" }).end("Not found");
});

server.listen(Number(values.port), values.host, () => {
  const { port } = server.address();
  console.log(`serving ${root} at http://${values.host}:${port}/`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
