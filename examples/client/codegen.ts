// GraphQL Code Generator: `npm run codegen` writes src/generated/ from the server's schema and
// the `graphql(...)` documents in src/ (see README.md, "Choices").
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  schema: "../../schema.graphql",
  documents: ["src/**/*.ts", "!src/generated/**"],
  // Imports with `.js`, as Node's ES modules (tsconfig `nodenext`) need them.
  emitLegacyCommonJSImports: false,
  generates: {
    "src/generated/": {
      preset: "client",
      // Also writes src/generated/persisted-documents.json, a JSON object of `sha256:<hex>` →
      // document (the text as the preset normalizes it), which a server takes as its
      // allow-list (PERSISTED_OPERATIONS_FILE), and puts each document's id, the same
      // `sha256:<hex>`, in its `__meta__.hash`.
      presetConfig: {
        persistedDocuments: { hashAlgorithm: "sha256" },
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
