// Bundles the /live page's script with esbuild: on demand when the server
// runs from its sources, and by `npm run build` into dist (what `npm start`
// and the container serve, without esbuild installed).
//   node --import tsx server/live/page/bundle.ts <outfile>
import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

export async function bundleLivePage(): Promise<string> {
  const { build } = await import("esbuild");
  const result = await build({
    entryPoints: [fileURLToPath(new URL("main.ts", import.meta.url))],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    write: false,
    legalComments: "none",
  });
  return result.outputFiles[0]?.text ?? "";
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const outfile = process.argv[2];
  if (!outfile) throw new Error("usage: bundle.ts <outfile>");
  await writeFile(outfile, await bundleLivePage());
}
