import { defineConfig } from '@playwright/test';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

// Each run starts its own server on a free-ish port with a fresh SQLite database. The config is
// evaluated again in every worker: the choice is kept in the environment the workers inherit.
process.env.E2E_PORT ??= String(3900 + Math.floor(Math.random() * 500));
process.env.E2E_DATA_DIR ??= fs.mkdtempSync(path.join(os.tmpdir(), 'bitabiz-e2e-'));
const port = Number(process.env.E2E_PORT);
const dataDir = process.env.E2E_DATA_DIR;
const bin = process.env.BITABIZ_BIN ?? path.resolve(__dirname, '../target/debug/bitabiz');
export const baseURL = `http://127.0.0.1:${port}`;

export default defineConfig({
  testDir: './tests',
  // The journeys share one server and build on each other's organisation: run them in order.
  workers: 1,
  fullyParallel: false,
  timeout: 60_000,
  expect: { timeout: 15_000 },
  reporter: [['list']],
  use: {
    baseURL,
    trace: 'off',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  webServer: {
    command: `${bin} serve --addr 127.0.0.1:${port} --database-url sqlite://${dataDir}/e2e.db`,
    cwd: path.resolve(__dirname, '..'),
    url: `${baseURL}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'ignore',
    stderr: 'pipe',
    env: { RUST_LOG: 'warn' },
  },
});
