// Runs TensorFlow.js graph models with the pure-JavaScript CPU backend and writes their outputs.
//
//   node reference.mjs JOB.json OUT.json
//
// JOB.json: {"models": [{"name": "age", "json": "/abs/age.json", "input": "/abs/age.f32",
//            "shape": [n, h, w, c], "outputs": {"onnx_name": "tf_tensor_name"}, "batch": 8}]}
// The input file holds n*h*w*c little-endian float32 values (NHWC). OUT.json gets, per model, the
// tfjs version, seconds spent executing, and each output's shape and values (float32 values
// written as JSON numbers, which round-trip exactly). Driven by bench/tfjs_equivalence.py, which
// installs the pinned packages of package-lock.json with `npm ci` next to this file.

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfconv from '@tensorflow/tfjs-converter';

async function load(jsonPath) {
  const doc = JSON.parse(readFileSync(jsonPath, 'utf8'));
  const specs = [];
  const shards = [];
  for (const group of doc.weightsManifest) {
    specs.push(...group.weights);
    for (const path of group.paths) shards.push(readFileSync(join(dirname(jsonPath), path)));
  }
  const all = Buffer.concat(shards);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const artifacts = {
    modelTopology: doc.modelTopology,
    format: doc.format,
    generatedBy: doc.generatedBy,
    convertedBy: doc.convertedBy,
    signature: doc.signature,
    userDefinedMetadata: doc.userDefinedMetadata,
    weightSpecs: specs,
    weightData,
  };
  return tfconv.loadGraphModel(tf.io.fromMemory(artifacts));
}

async function run(job) {
  const raw = readFileSync(job.input);
  const values = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const [n, ...rest] = job.shape;
  const per = rest.reduce((a, b) => a * b, 1);
  if (values.length !== n * per) throw new Error(`${job.name}: input has ${values.length} values, shape needs ${n * per}`);
  const model = await load(job.json);
  const names = Object.keys(job.outputs);
  const tensors = names.map((k) => job.outputs[k]);
  const collected = Object.fromEntries(names.map((k) => [k, { shape: null, data: [] }]));
  const batch = job.batch || 8;
  let seconds = 0;
  for (let start = 0; start < n; start += batch) {
    const count = Math.min(batch, n - start);
    const input = tf.tensor(values.subarray(start * per, (start + count) * per), [count, ...rest], 'float32');
    const t0 = process.hrtime.bigint();
    let outs = model.execute(input, tensors);
    if (!Array.isArray(outs)) outs = [outs];
    const data = await Promise.all(outs.map((t) => t.data()));
    seconds += Number(process.hrtime.bigint() - t0) / 1e9;
    names.forEach((k, i) => {
      collected[k].shape = [n, ...outs[i].shape.slice(1)];
      for (const v of data[i]) collected[k].data.push(v);
    });
    tf.dispose([input, ...outs]);
  }
  model.dispose();
  return { seconds, outputs: collected };
}

async function main() {
  const [jobPath, outPath] = process.argv.slice(2);
  if (!jobPath || !outPath) throw new Error('usage: node reference.mjs JOB.json OUT.json');
  await tf.setBackend('cpu');
  await tf.ready();
  const job = JSON.parse(readFileSync(jobPath, 'utf8'));
  const result = { tfjs_version: tf.version_core, backend: tf.getBackend(), models: {} };
  for (const model of job.models) {
    result.models[model.name] = await run(model);
    process.stderr.write(`${model.name}: ${result.models[model.name].seconds.toFixed(2)} s\n`);
  }
  writeFileSync(outPath, JSON.stringify(result));
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
