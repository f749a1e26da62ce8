import { defineConfig } from 'vite';

// Relative asset URLs, so the build can be served from any directory; module workers.
export default defineConfig({
  base: './',
  worker: { format: 'es' },
  build: { emptyOutDir: true },
});
