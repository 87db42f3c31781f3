// GraphQL Code Generator: `npm run codegen` writes src/generated/ from the server's schema and
// the `graphql(...)` documents in src/ (see README.md, "Choices").
import { createHash } from "node:crypto";
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  schema: "../../schema.graphql",
  documents: ["src/**/*.ts", "!src/generated/**"],
  // Imports with `.js`, as Node's ES modules (tsconfig `nodenext`) need them.
  emitLegacyCommonJSImports: false,
  generates: {
    "src/generated/": {
      preset: "client",
      // Also writes src/generated/persisted-documents.json, a JSON object of sha256 → document
      // (the text as the preset normalizes it), which a server takes as its allow-list
      // (PERSISTED_OPERATIONS_FILE), and puts each document's hash in its `__meta__.hash`.
      // The hash is computed here rather than with `hashAlgorithm: "sha256"`: this version of
      // the preset then prefixes every hash with `sha256:` (the GraphQL-over-HTTP document id
      // form), in the manifest's keys too, and the server refuses a manifest whose keys are
      // not 64 bare hex digits. The bare sha256 is a key it takes, and a `documentId` it reads.
      presetConfig: {
        persistedDocuments: {
          hashAlgorithm: (document: string) => createHash("sha256").update(document).digest("hex"),
        },
      },
      config: {
        // Documents as typed strings, which fetch and graphql-ws send as they are.
        documentMode: "string",
        // RFC 3339 text; a scalar not mapped here is an error, not `any`.
        scalars: { DateTime: "string" },
        strictScalars: true,
        enumsAsTypes: true,
        useTypeImports: true,
      },
    },
  },
};

export default config;
