// `require("@dellstore/client")` from CommonJS lands here (package.json
// "exports" → "require"): the client is an ES module, so say how to load it.
throw new Error(
  '@dellstore/client is ESM-only. Import it from an ES module ("type": "module" in your package.json, or a .mts file): ' +
    'import { createClient } from "@dellstore/client"; or, from CommonJS, const { createClient } = await import("@dellstore/client").',
);
