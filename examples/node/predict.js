#!/usr/bin/env node
// A joulecast client in Node.js: loads proto/joulecast/v1/estimator.proto at run time (no
// generated code), sends an ONNX file to the EnergyEstimator service and prints the answer.
//
//   node predict.js MODEL.onnx [--server HOST:PORT] [--batch-size 8] [--samples 1578]
//                   [--epochs 1] [--hardware NAME] [--region FRA] [--price-per-kwh 0.2] [--json]
//
// The file is sent as it is: this client does not strip weights (the Python CLI does, before
// upload). The server profiles full and weightless graphs alike, but caps what it accepts
// (64 MiB by default) and refuses graphs whose weights are in external data files: for those,
// upload a weightless copy (python -c "from joulecast.weightless import strip_weights_file").
// Files above 1 MiB go through the streaming RPC in 1 MiB chunks.
"use strict";

const fs = require("fs");
const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const PROTO_ROOT = path.resolve(__dirname, "..", "..", "proto");
const PROTO_FILE = "joulecast/v1/estimator.proto";
const CHUNK_BYTES = 1024 * 1024;
const J_PER_KWH = 3.6e6;

const FLAGS = {
  "--server": "server",
  "--batch-size": "batchSize",
  "--samples": "samples",
  "--epochs": "epochs",
  "--hardware": "hardware",
  "--region": "region",
  "--price-per-kwh": "pricePerKwh",
  "--timeout": "timeout",
};

function parseArgs(argv) {
  const args = {
    server: "localhost:50051",
    batchSize: 8,
    samples: 1578,
    epochs: 1,
    hardware: "",
    timeout: 120,
    json: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--json") args.json = true;
    else if (arg === "-h" || arg === "--help") args.help = true;
    else if (arg in FLAGS) {
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
      args[FLAGS[arg]] = argv[++i];
    } else if (arg.startsWith("-")) throw new Error(`unknown option ${arg}`);
    else if (args.model === undefined) args.model = arg;
    else throw new Error(`unexpected argument ${arg}`);
  }
  for (const name of ["batchSize", "samples", "epochs"]) {
    const value = Number(args[name]);
    if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be an integer >= 1`);
    args[name] = value;
  }
  if (args.pricePerKwh !== undefined) {
    args.pricePerKwh = Number(args.pricePerKwh);
    if (!Number.isFinite(args.pricePerKwh)) throw new Error("--price-per-kwh must be a number");
  }
  args.timeout = Number(args.timeout);
  return args;
}

function loadService() {
  const definition = protoLoader.loadSync(PROTO_FILE, {
    includeDirs: [PROTO_ROOT],
    keepCase: true, // field names as in the .proto: energy_j, co2_g ...
    longs: Number, // int64 counts (FLOPs, params) fit a double's 53 bits in practice
    enums: String,
    defaults: true, // unset proto3 `optional` fields and messages stay absent
  });
  return grpc.loadPackageDefinition(definition).joulecast.v1.EnergyEstimator;
}

function options(args) {
  const out = {
    batch_size: args.batchSize,
    samples: args.samples,
    epochs: args.epochs,
    hardware: args.hardware,
  };
  if (args.region !== undefined) out.region = args.region;
  if (args.pricePerKwh !== undefined) out.price_per_kwh = args.pricePerKwh;
  return out;
}

function predict(client, model, args) {
  const deadline = new Date(Date.now() + args.timeout * 1000);
  return new Promise((resolve, reject) => {
    const done = (err, response) => (err ? reject(err) : resolve(response));
    if (model.length <= CHUNK_BYTES) {
      client.PredictEnergy({ onnx_model: model, ...options(args) }, { deadline }, done);
      return;
    }
    const call = client.PredictEnergyStream({ deadline }, done);
    for (let start = 0; start < model.length; start += CHUNK_BYTES) {
      const data = model.subarray(start, start + CHUNK_BYTES);
      call.write(start === 0 ? { options: options(args), data } : { data });
    }
    call.end();
  });
}

function fmt(value, digits = 4) {
  return Number(value).toPrecision(digits);
}

function table(response, model) {
  const lines = [
    `model         ${model}`,
    `family        ${response.profile.family}  (${response.profile.family_reason})`,
    `params        ${response.profile.params}`,
    `hardware      ${response.hardware}   predictor version ${response.predictor_version}`,
    `energy source ${response.energy_source}`,
  ];
  if (response.energy_is_estimate) {
    lines.push("ESTIMATED     the predictor learned from estimated energy, not measurements");
  }
  if (response.grid) {
    const g = response.grid;
    lines.push(`grid          ${g.region} (${g.region_name}): ${fmt(g.co2_g_per_kwh)} gCO2eq/kWh, ` +
      `mix of ${g.year} (${g.source})`);
  }
  lines.push("");
  for (const phase of ["train", "test"]) {
    const p = response[phase];
    if (!p || !p.available) {
      lines.push(`${phase.padEnd(6)} unavailable: no predictor covers this phase`);
      continue;
    }
    let line = `${phase.padEnd(6)} ${fmt(p.energy_j)} J [${fmt(p.energy_low_j)}, ` +
      `${fmt(p.energy_high_j)}]  ${fmt(p.energy_j / J_PER_KWH)} kWh`;
    const f = p.footprint;
    if (f && f.co2_g !== undefined && f.co2_g !== null) {
      line += `  ${fmt(f.co2_g)} gCO2eq [${fmt(f.co2_low_g)}, ${fmt(f.co2_high_g)}]`;
    }
    if (f && f.cost !== undefined && f.cost !== null) line += `  cost ${fmt(f.cost)}`;
    lines.push(line);
  }
  for (const w of response.warnings) lines.push(`warning: ${w}`);
  return lines.join("\n");
}

async function main(argv) {
  let args;
  try {
    args = parseArgs(argv);
  } catch (err) {
    console.error(`error: ${err.message}`);
    return 2;
  }
  if (args.help || args.model === undefined) {
    console.error("usage: node predict.js MODEL.onnx [--server HOST:PORT] [--batch-size N] " +
      "[--samples N] [--epochs N] [--hardware NAME] [--region CODE] [--price-per-kwh P] [--json]");
    return args.help ? 0 : 2;
  }
  let model;
  try {
    model = fs.readFileSync(args.model);
  } catch (err) {
    console.error(`error: cannot read ${args.model}: ${err.code || err.message}`);
    return 2;
  }
  const Service = loadService();
  const client = new Service(args.server, grpc.credentials.createInsecure(), {
    "grpc.max_send_message_length": 16 * 1024 * 1024,
  });
  try {
    const response = await predict(client, model, args);
    console.log(args.json ? JSON.stringify(response, null, 2) : table(response, args.model));
    return 0;
  } catch (err) {
    const code = Object.keys(grpc.status).find((k) => grpc.status[k] === err.code) || err.code;
    console.error(`error: ${err.details || err.message} (${code})`);
    return 2;
  } finally {
    client.close();
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
