// A one-line progress display on a terminal; silent when stderr is a pipe or file.
import { statSync } from "node:fs";

export function progressBar(path: string): { update: (bytes: number) => void; done: () => void } {
  const out = process.stderr;
  if (!out.isTTY) return { update: () => {}, done: () => {} };
  const total = statSync(path).size || 1;
  let shown = -1;
  return {
    update(bytes) {
      const percent = Math.floor((bytes / total) * 100);
      if (percent === shown) return;
      shown = percent;
      out.write(`\rreading ${path}: ${percent}% of ${(total / 1e6).toFixed(1)} MB`);
    },
    done: () => out.write("\n"),
  };
}
