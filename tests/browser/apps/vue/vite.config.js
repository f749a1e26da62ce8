import { defineConfig } from 'vite';

// Relative asset URLs, so the build can be served from any directory. The
// page uses Vue's render functions: no template compiler, no plugin.
export default defineConfig({
  base: './',
  build: { emptyOutDir: true },
});
