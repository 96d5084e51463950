// Builds GraphiQL from the npm packages in this folder into service/http/static/graphiql/:
// content-hashed file names, a .gz and a .br copy of each compressible file, and manifest.json
// (logical name -> hashed file) that service/http/graphiql.py reads. Run through ./build.sh.
import { brotliCompress, constants as zconst, gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { mkdir, mkdtemp, readdir, readFile, rename, rmdir, unlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as esbuild from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.resolve(here, '..', 'service', 'http', 'static', 'graphiql');
const require = createRequire(import.meta.url);

const gzipAsync = promisify(gzip);
const brotliAsync = promisify(brotliCompress);
// Text-like outputs worth compressing; fonts in woff/woff2 are compressed already.
const COMPRESSIBLE = /\.(js|css|json|txt|map|svg|ttf|wasm)$/;
const MIN_COMPRESS_BYTES = 1024;

const common = {
  absWorkingDir: here,
  bundle: true,
  minify: true,
  target: 'es2022',
  legalComments: 'linked',
  metafile: true,
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
};

// Monaco's modules import their own stylesheets; graphiql's stylesheet already contains all of
// them. Left alone, esbuild would emit them again as CSS chunks that nothing loads.
const monacoCssFromJs = {
  name: 'monaco-css-from-js',
  setup(build) {
    build.onResolve({ filter: /\.css$/ }, (args) => {
      if (args.kind !== 'import-statement' || !/[\\/]monaco-editor[\\/]/.test(args.importer)) {
        return undefined;
      }
      return { path: args.path, namespace: 'monaco-css-from-js' };
    });
    build.onLoad({ filter: /.*/, namespace: 'monaco-css-from-js' }, () => ({
      contents: '',
      loader: 'js',
    }));
  },
};

function outputsByEntry(metafile, stagingDir) {
  const result = {};
  for (const [file, output] of Object.entries(metafile.outputs)) {
    if (!output.entryPoint) continue;
    const name = path.basename(file);
    result[output.entryPoint] = { js: name };
    if (output.cssBundle) result[output.entryPoint].css = path.basename(output.cssBundle);
    if (path.dirname(path.resolve(here, file)) !== stagingDir) {
      throw new Error(`unexpected output location ${file}`);
    }
  }
  return result;
}

async function compress(dir, name) {
  const raw = await readFile(path.join(dir, name));
  const sizes = { bytes: raw.length };
  if (!COMPRESSIBLE.test(name) || raw.length < MIN_COMPRESS_BYTES) return sizes;
  const [gz, br] = await Promise.all([
    gzipAsync(raw, { level: 9 }),
    brotliAsync(raw, {
      params: {
        [zconst.BROTLI_PARAM_QUALITY]: 11,
        [zconst.BROTLI_PARAM_SIZE_HINT]: raw.length,
      },
    }),
  ]);
  if (gz.length < raw.length) {
    await writeFile(path.join(dir, `${name}.gz`), gz);
    sizes.gzip = gz.length;
  }
  if (br.length < raw.length) {
    await writeFile(path.join(dir, `${name}.br`), br);
    sizes.br = br.length;
  }
  return sizes;
}

function version(pkg) {
  return require(`${pkg}/package.json`).version;
}

async function main() {
  const started = performance.now();
  await mkdir(outDir, { recursive: true });
  // Build in a scratch folder (same file system, ignored by git), then swap the files in.
  const scratch = path.join(here, 'node_modules', '.cache');
  await mkdir(scratch, { recursive: true });
  const staging = await mkdtemp(path.join(scratch, 'graphiql-build-'));

  const app = await esbuild.build({
    ...common,
    entryPoints: { main: 'src/main.jsx' },
    outdir: staging,
    format: 'esm',
    splitting: true,
    jsx: 'automatic',
    entryNames: '[name]-[hash]',
    chunkNames: 'chunk-[hash]',
    assetNames: '[name]-[hash]',
    plugins: [monacoCssFromJs],
    loader: { '.ttf': 'file', '.woff': 'file', '.woff2': 'file', '.svg': 'file' },
  });
  // Monaco's workers run as classic scripts created with `new Worker(url)`.
  const workerNames = ['editor', 'json', 'graphql'];
  const workers = await esbuild.build({
    ...common,
    entryPoints: Object.fromEntries(workerNames.map((n) => [n, `src/workers/${n}.js`])),
    outdir: staging,
    format: 'iife',
    entryNames: 'worker-[name]-[hash]',
  });

  const appOut = outputsByEntry(app.metafile, staging)['src/main.jsx'];
  const workerOut = outputsByEntry(workers.metafile, staging);
  if (!appOut?.css) throw new Error('esbuild produced no stylesheet for src/main.jsx');

  const names = (await readdir(staging)).sort();
  const files = {};
  for (const [name, sizes] of await Promise.all(
    names.map(async (name) => [name, await compress(staging, name)]),
  )) {
    files[name] = sizes;
  }

  const manifest = {
    manifestVersion: 1,
    entries: {
      'main.js': appOut.js,
      'main.css': appOut.css,
      ...Object.fromEntries(
        workerNames.map((n) => [`worker/${n}`, workerOut[`src/workers/${n}.js`].js]),
      ),
    },
    files,
    packages: Object.fromEntries(
      ['graphiql', '@graphiql/react', '@graphiql/plugin-explorer', 'react', 'graphql',
        'monaco-editor', 'monaco-graphql'].map((p) => [p, version(p)]),
    ),
  };
  await writeFile(path.join(staging, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);

  // Replace the previous build: the output folder is flat and holds only what this script wrote.
  for (const entry of await readdir(outDir, { withFileTypes: true })) {
    if (entry.isFile()) await unlink(path.join(outDir, entry.name));
  }
  for (const name of await readdir(staging)) {
    await rename(path.join(staging, name), path.join(outDir, name));
  }
  await rmdir(staging);

  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const kib = (n) => (n === undefined ? '-' : `${(n / 1024).toFixed(0)} KiB`);
  for (const [logical, name] of Object.entries(manifest.entries)) {
    const s = files[name];
    console.log(`  ${logical.padEnd(14)} ${name.padEnd(34)} ${kib(s.bytes).padStart(9)}  gz ${kib(s.gzip).padStart(9)}  br ${kib(s.br).padStart(9)}`);
  }
  const total = Object.values(files).reduce((a, s) => a + s.bytes, 0);
  console.log(`graphiql: ${names.length} files, ${kib(total)} raw, in ${path.relative(process.cwd(), outDir) || '.'} (${seconds} s)`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
