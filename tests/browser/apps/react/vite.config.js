import { defineConfig } from 'vite';

// Relative asset URLs, so the build can be served from any directory. JSX
// goes through Vite's own transform with React's automatic runtime.
export default defineConfig({
  base: './',
  build: { emptyOutDir: true },
  oxc: { jsx: { runtime: 'automatic' } },
});
