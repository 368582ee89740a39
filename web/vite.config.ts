// The Browser's build: one page, its scripts and styles hashed into assets/, written into the Python
// package (src/terracube/web_dist, package data) where `terracube serve` serves it at /browser/.
import { defineConfig } from "vite";

export default defineConfig({
  // Relative URLs: the page works wherever the server is mounted (/browser/, or behind a proxy's prefix).
  base: "./",
  build: {
    outDir: "../src/terracube/web_dist",
    emptyOutDir: true,
    // MapLibre alone is ~800 kB minified; one chunk, loaded once and cached for good (hashed name).
    chunkSizeWarningLimit: 1200,
    sourcemap: false,
    target: "es2020",
  },
});
