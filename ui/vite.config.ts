// Builds the UI into the Python package, where `cairn server` serves it at `/`.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const outDir = fileURLToPath(new URL("../src/cairn/server/static", import.meta.url));
// `npm run dev` proxies the API to a `cairn server` on $CAIRN_URL (default port 5000).
const api = process.env.CAIRN_URL ?? "http://127.0.0.1:5000";

export default defineConfig({
  base: "/",
  build: {
    outDir,
    emptyOutDir: true,
    assetsDir: "assets",
    target: "es2022",
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
  server: { proxy: { "/api": api } },
});
