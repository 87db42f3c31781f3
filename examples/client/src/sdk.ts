// The transport under the generated documents: GraphQL over HTTP with `fetch`, and
// `graphql-ws` for the socket. Each function takes a generated `TypedDocumentString`, so its
// variables are checked against the operation's and its result has the operation's type.
//
// A document goes either as its text (`query`), or by hash alone: the sha256 that codegen put
// in the document's `__meta__.hash` (`persistedDocuments` in codegen.ts), which names it in
// the manifest codegen wrote, `src/generated/persisted-documents.json`. A server started with
// that manifest as its allow-list (`PERSISTED_OPERATIONS_FILE`) runs those documents only.
import type { GraphQLFormattedError } from "graphql";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import type { TypedDocumentString } from "./generated/graphql.js";

type Variables = Record<string, unknown>;

/** How a document is sent: its text, or only the hash codegen computed for it. */
export type SendBy = "text" | "hash";

/** The id codegen put in a document's `__meta__`: `sha256:` and 64 hex digits. */
export function persistedHash<TResult, TVariables>(document: TypedDocumentString<TResult, TVariables>): string {
  const hash: unknown = document.__meta__?.["hash"];
  if (typeof hash !== "string" || !/^sha256:[0-9a-f]{64}$/.test(hash)) {
    throw new Error(
      `${operationName(document)}: no sha256 in the document's __meta__.hash ` +
        `(run npm run codegen with persistedDocuments in codegen.ts), found ${JSON.stringify(hash)}`,
    );
  }
  return hash;
}

/** The bare sha256 of a document, as Apollo's `extensions.persistedQuery` carries it. */
function sha256Hex<TResult, TVariables>(document: TypedDocumentString<TResult, TVariables>): string {
  return persistedHash(document).slice("sha256:".length);
}

/** A response (HTTP) or a `next` payload (socket). */
interface Result<TResult> {
  data?: TResult | null;
  errors?: readonly GraphQLFormattedError[];
}

/** The `errors` of a response, with each error's `extensions.code` in the message. */
export class GraphQLResponseError extends Error {
  constructor(
    operation: string,
    readonly errors: readonly GraphQLFormattedError[],
  ) {
    super(`${operation}: ${errors.map(describeError).join("; ")}`);
    this.name = "GraphQLResponseError";
  }
}

function describeError(error: GraphQLFormattedError): string {
  const code = error.extensions?.["code"];
  return typeof code === "string" ? `${code}: ${error.message}` : error.message;
}

function operationName(document: { toString(): string }): string {
  const match = /\b(?:query|mutation|subscription)\s+(\w+)/.exec(document.toString());
  return match?.[1] ?? "anonymous operation";
}

function dataOf<TResult>(operation: string, result: Result<TResult>): TResult {
  if (result.errors !== undefined && result.errors.length > 0) {
    throw new GraphQLResponseError(operation, result.errors);
  }
  if (result.data === undefined || result.data === null) {
    throw new Error(`${operation}: a response with neither data nor errors`);
  }
  return result.data;
}

export interface RequestOptions {
  /** Signs the request in. */
  token?: string | undefined;
  /** `"hash"` sends `documentId` (the document's sha256) instead of `query`. */
  by?: SendBy;
}

/**
 * Runs a query or mutation over HTTP (`POST`), signed in when `token` is given, the document
 * sent as text or, `by: "hash"`, as a `documentId` alone (the GraphQL-over-HTTP field).
 */
export async function request<TResult, TVariables extends Variables>(
  url: string,
  document: TypedDocumentString<TResult, TVariables>,
  variables: TVariables,
  { token, by = "text" }: RequestOptions = {},
): Promise<TResult> {
  const operation = operationName(document);
  const body =
    by === "hash"
      ? { documentId: persistedHash(document), variables, operationName: operation }
      : { query: document.toString(), variables, operationName: operation };
  const { status, type, result } = await post(url, body, token);
  if (result === undefined) {
    throw new Error(`${operation}: HTTP ${status} with ${type || "no content type"}`);
  }
  return dataOf(operation, result as Result<TResult>);
}

/** What the server answered a request: its status, media type, and JSON body if it is JSON. */
export interface RawResponse {
  status: number;
  type: string;
  result: Result<unknown> | undefined;
}

/** POSTs any JSON body, for the requests a typed document cannot make (those meant to fail). */
export async function post(url: string, body: unknown, token?: string): Promise<RawResponse> {
  const headers: Record<string, string> = {
    "content-type": "application/json",
    accept: "application/graphql-response+json, application/json",
  };
  if (token !== undefined) {
    headers["authorization"] = `Bearer ${token}`;
  }
  return rawResponse(await fetch(url, { method: "POST", headers, body: JSON.stringify(body) }));
}

/** GETs `url` with `params` (objects JSON-encoded, as GraphQL over HTTP has them). */
export async function get(url: string, params: Record<string, unknown>): Promise<RawResponse> {
  const target = new URL(url);
  for (const [name, value] of Object.entries(params)) {
    target.searchParams.set(name, typeof value === "string" ? value : JSON.stringify(value));
  }
  const accept = "application/graphql-response+json, application/json";
  return rawResponse(await fetch(target, { headers: { accept } }));
}

async function rawResponse(response: Response): Promise<RawResponse> {
  const type = response.headers.get("content-type") ?? "";
  const result = type.includes("json") ? ((await response.json()) as Result<unknown>) : undefined;
  return { status: response.status, type, result };
}

/**
 * A `graphql-ws` client (protocol `graphql-transport-ws`) that signs its socket in with the
 * access token in the `connection_init` payload. It opens the socket with its first operation.
 * It does not reconnect: a script should report the first failure, not retry it.
 */
export function connect(url: string, token: string): Client {
  return createClient({
    url: url.replace(/^http/, "ws"),
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${token}` },
    retryAttempts: 0,
  });
}

interface CloseEventLike {
  code: number;
  reason: string;
}

function isCloseEvent(value: unknown): value is CloseEventLike {
  return typeof value === "object" && value !== null && "code" in value && "reason" in value;
}

/** What graphql-ws hands a failed operation (an Error, `error` payloads, a close event) as an Error. */
function socketError(operation: string, failure: unknown): Error {
  if (failure instanceof Error) {
    return failure;
  }
  if (Array.isArray(failure)) {
    return new GraphQLResponseError(operation, failure as GraphQLFormattedError[]);
  }
  if (isCloseEvent(failure)) {
    const reason = failure.reason === "" ? "" : ` (${failure.reason})`;
    return new Error(`${operation}: socket closed with ${failure.code}${reason}`);
  }
  return new Error(`${operation}: ${String(failure)}`);
}

/**
 * Starts an operation over the socket at once (graphql-ws sends the operations of one client
 * on one socket, in the order they were started) and returns its results' data. `by: "hash"`
 * sends `extensions.persistedQuery` with the document's sha256 instead of its text.
 */
export function subscribe<TResult, TVariables extends Variables>(
  client: Client,
  document: TypedDocumentString<TResult, TVariables>,
  variables: TVariables,
  by: SendBy = "text",
): AsyncGenerator<TResult, void, undefined> {
  const operation = operationName(document);
  const payload =
    by === "hash"
      ? {
          // graphql-ws 6 sends no subscribe without a `query` string; beside a hash, the
          // server takes an empty one for no text at all.
          query: "",
          extensions: { persistedQuery: { version: 1, sha256Hash: sha256Hex(document) } },
          variables,
          operationName: operation,
        }
      : { query: document.toString(), variables, operationName: operation };
  const results = client.iterate<TResult>(payload);
  return (async function* () {
    try {
      for await (const result of results) {
        yield dataOf(operation, result);
      }
    } catch (failure) {
      throw socketError(operation, failure);
    } finally {
      await results.return?.();
    }
  })();
}

/** Runs a query or mutation over the socket: its one result. */
export async function requestOverSocket<TResult, TVariables extends Variables>(
  client: Client,
  document: TypedDocumentString<TResult, TVariables>,
  variables: TVariables,
  by: SendBy = "text",
): Promise<TResult> {
  for await (const data of subscribe(client, document, variables, by)) {
    return data;
  }
  throw new Error(`${operationName(document)}: completed without a result`);
}

/**
 * Sends `query` as it is over the socket: the errors the server refused it with, or none if it
 * ran. For the documents a typed one cannot be (those meant to fail).
 */
export async function errorsOverSocket(client: Client, query: string): Promise<readonly GraphQLFormattedError[]> {
  try {
    for await (const result of client.iterate({ query })) {
      return result.errors ?? [];
    }
    return [];
  } catch (failure) {
    // graphql-ws hands an `error` message's payload, the errors, to the iterator as thrown.
    if (Array.isArray(failure)) {
      return failure as GraphQLFormattedError[];
    }
    throw socketError(query, failure);
  }
}
