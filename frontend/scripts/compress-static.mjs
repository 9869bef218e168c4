// Precompress the static export for the hub (hub/static.py serves `x.br` / `x.gz`
// in place of `x` to a browser that accepts them): brotli at its best quality and
// gzip at level 9, made once here instead of on every request. Only text files
// of 1 KiB or more, and only when the compressed copy is smaller.
//
//   node scripts/compress-static.mjs [dir]      (default: out)
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";

const root = path.resolve(process.argv[2] ?? "out");
const TEXT = new Set([".html", ".js", ".mjs", ".css", ".txt", ".json", ".svg", ".xml", ".map", ".webmanifest"]);
const MIN_BYTES = 1024;

function* files(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* files(full);
    else if (entry.isFile()) yield full;
  }
}

let count = 0;
let before = 0;
let afterBr = 0;
for (const file of files(root)) {
  if (!TEXT.has(path.extname(file))) continue;
  const data = fs.readFileSync(file);
  if (data.length < MIN_BYTES) continue;
  const br = zlib.brotliCompressSync(data, {
    params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length },
  });
  const gz = zlib.gzipSync(data, { level: 9 });
  for (const [ext, packed] of [[".br", br], [".gz", gz]]) {
    if (packed.length < data.length) fs.writeFileSync(file + ext, packed);
    else fs.rmSync(file + ext, { force: true });
  }
  count += 1;
  before += data.length;
  afterBr += Math.min(br.length, data.length);
}
const kib = (n) => `${(n / 1024).toFixed(0)} KiB`;
console.log(`compress-static: ${count} files, ${kib(before)} → ${kib(afterBr)} brotli (gzip beside it)`);
