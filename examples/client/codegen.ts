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
