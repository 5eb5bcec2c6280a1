import { defineConfig } from "vitest/config";

// Served by flowmeter-api: index.html at /, everything else under /ui/assets/ (build.rs
// embeds dist/). Nothing is inlined as a data: URL, which the CSP would refuse.
export default defineConfig({
  base: "/ui/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    target: "es2022",
  },
  test: {
    environment: "node",
    include: ["test/**/*.test.ts"],
  },
});
