// Playwright runs the page (web/dist, built by `npm run build`) in Debian's Chromium: WebGPU there is
// SwiftShader (a CPU Vulkan), slow, so one worker, tiny models and generous timeouts. Playwright never downloads
// a browser here: executablePath points at the system one (apt-get install chromium).
import { defineConfig } from '@playwright/test';

const PORT = Number(process.env.ALIGNLAB_E2E_PORT ?? 4173);
const chromium = process.env.ALIGNLAB_CHROMIUM ?? '/usr/bin/chromium';

export default defineConfig({
  testDir: 'tests/e2e',
  outputDir: 'test-results/e2e',
  workers: 1,
  fullyParallel: false,
  retries: 0,
  timeout: 20 * 60_000, // 20 DPO steps on SwiftShader took 5–9 minutes here
  expect: { timeout: 120_000 },
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'playwright-report' }]],
  use: {
    baseURL: `http://127.0.0.1:${PORT}/`,
    browserName: 'chromium',
    headless: true,
    viewport: { width: 1400, height: 1100 },
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: chromium,
      args: [
        '--enable-unsafe-webgpu',
        '--disable-quic',
        '--no-sandbox',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    },
  },
  webServer: {
    command: `npx vite preview web --outDir dist --host 127.0.0.1 --port ${PORT} --strictPort`,
    url: `http://127.0.0.1:${PORT}/`,
    reuseExistingServer: !process.env.CI,
    timeout: 60_000,
    stdout: 'ignore',
    stderr: 'pipe',
  },
});
