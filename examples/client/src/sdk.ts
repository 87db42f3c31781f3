// The transport under the generated documents: GraphQL over HTTP with `fetch`, and
// `graphql-ws` for the socket. Each function takes a generated `TypedDocumentString`, so its
// variables are checked against the operation's and its result has the operation's type.
import type { GraphQLFormattedError } from "graphql";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import type { TypedDocumentString } from "./generated/graphql.js";

type Variables = Record<string, unknown>;

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

/** Runs a query or mutation over HTTP (`POST`), signed in when `token` is given. */
export async function request<TResult, TVariables extends Variables>(
  url: string,
  document: TypedDocumentString<TResult, TVariables>,
  variables: TVariables,
  token?: string,
): Promise<TResult> {
  const operation = operationName(document);
  const headers: Record<string, string> = {
    "content-type": "application/json",
    accept: "application/graphql-response+json, application/json",
  };
  if (token !== undefined) {
    headers["authorization"] = `Bearer ${token}`;
  }
  const response = await fetch(url, {
    method: "POST",
    headers,
    body: JSON.stringify({ query: document.toString(), variables, operationName: operation }),
  });
  const type = response.headers.get("content-type") ?? "";
  if (!type.includes("json")) {
    throw new Error(`${operation}: HTTP ${response.status} with ${type || "no content type"}`);
  }
  return dataOf(operation, (await response.json()) as Result<TResult>);
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
 * on one socket, in the order they were started) and returns its results' data.
 */
export function subscribe<TResult, TVariables extends Variables>(
  client: Client,
  document: TypedDocumentString<TResult, TVariables>,
  variables: TVariables,
): AsyncGenerator<TResult, void, undefined> {
  const operation = operationName(document);
  const results = client.iterate<TResult>({ query: document.toString(), variables, operationName: operation });
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
): Promise<TResult> {
  for await (const data of subscribe(client, document, variables)) {
    return data;
  }
  throw new Error(`${operationName(document)}: completed without a result`);
}
