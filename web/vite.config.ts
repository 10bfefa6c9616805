import { defineConfig } from 'vite';

// Preact through esbuild's automatic JSX runtime: no framework plugin needed. The build is deterministic
// (content-hashed names, no timestamps) so CI can rebuild and diff it against the committed dist/.
export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  resolve: { alias: { react: 'preact/compat', 'react-dom': 'preact/compat' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    modulePreload: { polyfill: false },
    sourcemap: false,
    reportCompressedSize: false,
    chunkSizeWarningLimit: 600,
  },
  test: { include: ['src/**/*.test.ts'], environment: 'node' },
  server: { proxy: { '/api': 'http://127.0.0.1:8000', '/ws': { target: 'ws://127.0.0.1:8000', ws: true } } },
});
