// A small TIFF reader for the viewer's pixel data: classic and BigTIFF, strips (not tiles),
// uncompressed or deflate, 8–64-bit integer and float samples. Enough for the service's own
// OME-TIFF outputs and plain uploads; anything else throws and the viewer falls back to the
// server's preview PNG.

const TYPE_SIZE = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 16: 8, 17: 8, 18: 8 };

function readValues(view, le, type, count, offset) {
  const out = [];
  for (let i = 0; i < count; i++) {
    const at = offset + i * TYPE_SIZE[type];
    switch (type) {
      case 1: case 2: case 7: out.push(view.getUint8(at)); break;
      case 3: out.push(view.getUint16(at, le)); break;
      case 4: case 13: out.push(view.getUint32(at, le)); break;
      case 5: out.push(view.getUint32(at, le) / view.getUint32(at + 4, le)); break;
      case 11: out.push(view.getFloat32(at, le)); break;
      case 12: out.push(view.getFloat64(at, le)); break;
      case 16: case 18: out.push(Number(view.getBigUint64(at, le))); break;
      default: out.push(null);
    }
  }
  return out;
}

function readIfds(view) {
  const le = view.getUint16(0) === 0x4949;
  const big = view.getUint16(2, le) === 43;
  if (!big && view.getUint16(2, le) !== 42) throw new Error("not a TIFF file");
  const offsetOf = (at) => (big ? Number(view.getBigUint64(at, le)) : view.getUint32(at, le));
  const ifds = [];
  let next = offsetOf(big ? 8 : 4);
  while (next && ifds.length < 100000) {
    const count = big ? Number(view.getBigUint64(next, le)) : view.getUint16(next, le);
    const entrySize = big ? 20 : 12;
    const start = next + (big ? 8 : 2);
    const tags = {};
    for (let i = 0; i < count; i++) {
      const at = start + i * entrySize;
      const tag = view.getUint16(at, le), type = view.getUint16(at + 2, le);
      const n = big ? Number(view.getBigUint64(at + 4, le)) : view.getUint32(at + 4, le);
      const size = (TYPE_SIZE[type] || 1) * n;
      const valueAt = size <= (big ? 8 : 4) ? at + (big ? 12 : 8) : offsetOf(at + (big ? 12 : 8));
      tags[tag] = type === 2 ? new TextDecoder().decode(new Uint8Array(view.buffer, view.byteOffset + valueAt, Math.max(0, n - 1))) : readValues(view, le, type, n, valueAt);
    }
    ifds.push(tags);
    next = offsetOf(start + count * entrySize);
  }
  return { le, ifds };
}

async function inflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function sampleReader(view, le, format, bits) {
  const key = `${format}/${bits}`;
  const read = {
    "1/8": (o) => view.getUint8(o), "1/16": (o) => view.getUint16(o, le), "1/32": (o) => view.getUint32(o, le),
    "2/8": (o) => view.getInt8(o), "2/16": (o) => view.getInt16(o, le), "2/32": (o) => view.getInt32(o, le),
    "3/32": (o) => view.getFloat32(o, le), "3/64": (o) => view.getFloat64(o, le),
  }[key];
  if (!read) throw new Error(`unsupported sample type ${key}`);
  return read;
}

/** Decode every page: {width, height, planes: Float32Array[], pixelSizeUm, description}. */
export async function decodeTiff(buffer) {
  const view = new DataView(buffer);
  const { le, ifds } = readIfds(view);
  const first = ifds[0];
  const width = first[256][0], height = first[257][0];
  const planes = [];
  for (const tags of ifds) {
    if (tags[322]) throw new Error("tiled TIFF is not supported in the browser");
    if (tags[256][0] !== width || tags[257][0] !== height) continue; // e.g. thumbnails
    const compression = (tags[259] || [1])[0];
    if (![1, 8, 32946].includes(compression)) throw new Error(`TIFF compression ${compression} is not supported in the browser`);
    const predictor = (tags[317] || [1])[0];
    const spp = (tags[277] || [1])[0], bits = (tags[258] || [8])[0], format = (tags[339] || [1])[0];
    const planar = (tags[284] || [1])[0];
    const chunks = [];
    for (let i = 0; i < tags[273].length; i++) {
      const raw = new Uint8Array(buffer, tags[273][i], tags[279][i]);
      chunks.push(compression === 1 ? raw : await inflate(raw));
    }
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) { bytes.set(c, at); at += c.length; }
    const data = new DataView(bytes.buffer);
    const read = sampleReader(data, le, format, bits);
    const step = bits / 8, n = width * height;
    for (let s = 0; s < spp; s++) {
      const plane = new Float32Array(n);
      for (let i = 0; i < n; i++) plane[i] = read(planar === 2 ? (s * n + i) * step : (i * spp + s) * step);
      if (predictor === 2) for (let y = 0; y < height; y++) for (let x = 1; x < width; x++) plane[y * width + x] = (plane[y * width + x] + plane[y * width + x - 1]) % 2 ** bits;
      planes.push(plane);
    }
  }
  const description = typeof first[270] === "string" ? first[270] : "";
  let pixelSizeUm = null;
  const ome = /PhysicalSizeX="([0-9.eE+-]+)"/.exec(description);
  if (ome) pixelSizeUm = Number(ome[1]);
  else if (first[282] && first[282][0] > 0) {
    const unit = (first[296] || [2])[0];
    if (unit === 3) pixelSizeUm = 1e4 / first[282][0];
    else if (unit === 2) pixelSizeUm = 25400 / first[282][0];
  }
  return { width, height, planes, pixelSizeUm, description };
}
