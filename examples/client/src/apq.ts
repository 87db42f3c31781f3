// Apollo's automatic persisted queries (APQ) as a client library speaks them: urql's
// `persistedExchange` in front of its `fetchExchange`. Each operation goes first as the sha256
// of its text alone; a server that does not hold it answers `PersistedQueryNotFound`, and the
// exchange sends it again with the text, which the server keeps; the next time, the hash
// alone runs it. Queries sent by hash go as GET (`preferGetForPersistedQueries`, the
// CDN-friendly path), mutations as POST.
//
// A `fetch` of its own records every request urql makes and what it was answered, so that the
// script can check the exchange by what went over the wire, not by what urql says it did.
import { createHash } from "node:crypto";
import { Client, fetchExchange, type CombinedError, type DocumentInput } from "@urql/core";
import { persistedExchange } from "@urql/exchange-persisted";
import type { TypedDocumentString } from "./generated/graphql.js";
import { GraphQLResponseError } from "./sdk.js";

type Variables = Record<string, unknown>;

/** One request urql made, and its answer, as they went over the wire. */
export interface Exchanged {
  method: string;
  /** The GraphQL request's fields: the POST body, or GET's parameters decoded. */
  sent: {
    query?: string;
    operationName?: string;
    extensions?: { persistedQuery?: { version: number; sha256Hash: string } };
    documentId?: string;
  };
  status: number;
  /** The response's JSON body (GraphQL `data` and `errors`). */
  received: { data?: unknown; errors?: readonly { message: string; extensions?: Record<string, unknown> }[] };
}

/**
 * The sha256 of the text in hex, as the server names documents. `persistedExchange` uses the
 * Web Crypto API where it finds it (`window.crypto`, `self.crypto`), which Node 20 does not
 * expose under those names; given here, it is plain `node:crypto`.
 */
export async function sha256(text: string): Promise<string> {
  return sha256Hex(text);
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * A generated document as urql takes it: urql accepts a document's text as a `string` (and
 * parses it once), and typing it `DocumentInput<TResult, TVariables>` keeps the operation's
 * result and variables types. The generated `TypedDocumentString` itself is a `String`
 * object, which urql would take for a parsed document.
 */
export function forUrql<TResult, TVariables>(
  document: TypedDocumentString<TResult, TVariables>,
): DocumentInput<TResult, TVariables> {
  return document.toString();
}

export class ApqClient {
  /** Every request made, in order. */
  readonly log: Exchanged[] = [];
  /** Sent as `Authorization: Bearer` once set. */
  token: string | undefined;
  private readonly client: Client;

  constructor(url: string) {
    this.client = new Client({
      url,
      exchanges: [
        persistedExchange({
          generateHash: sha256,
          // Mutations too: by default only queries are sent by hash.
          enableForMutation: true,
          // The default, spelled out: a query sent by hash goes as GET.
          preferGetForPersistedQueries: "within-url-limit",
        }),
        fetchExchange,
      ],
      // GET only for what the exchange sends by hash, not every query.
      preferGetMethod: false,
      // No cache: every operation goes to the server.
      requestPolicy: "network-only",
      fetchOptions: () => (this.token === undefined ? {} : { headers: { authorization: `Bearer ${this.token}` } }),
      fetch: (input, init) => this.fetch(input, init),
    });
  }

  /** Runs a query or mutation: its data, or an error naming the operation and the error codes. */
  async run<TResult, TVariables extends Variables>(
    document: TypedDocumentString<TResult, TVariables>,
    variables: TVariables,
  ): Promise<TResult> {
    const name = /\b(query|mutation)\s+(\w+)/.exec(document.toString());
    const operation = name?.[2] ?? "anonymous operation";
    const result = await (
      name?.[1] === "mutation"
        ? this.client.mutation(forUrql(document), variables)
        : this.client.query(forUrql(document), variables)
    ).toPromise();
    if (result.error !== undefined) {
      throw describeCombinedError(operation, result.error);
    }
    if (result.data === undefined || result.data === null) {
      throw new Error(`${operation}: a response with neither data nor errors`);
    }
    return result.data;
  }

  private async fetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    const method = init?.method ?? "GET";
    const url = new URL(input instanceof Request ? input.url : input);
    let sent: Exchanged["sent"];
    if (method === "GET") {
      const params = url.searchParams;
      const json = (name: string) => {
        const value = params.get(name);
        return value === null ? undefined : (JSON.parse(value) as unknown);
      };
      sent = {
        ...(params.has("query") ? { query: params.get("query") ?? "" } : {}),
        ...(params.has("operationName") ? { operationName: params.get("operationName") ?? "" } : {}),
        ...(params.has("extensions") ? { extensions: json("extensions") as Exchanged["sent"]["extensions"] } : {}),
      };
    } else {
      sent = JSON.parse(String(init?.body)) as Exchanged["sent"];
    }
    const response = await fetch(input, init);
    const type = response.headers.get("content-type") ?? "";
    const received = type.includes("json") ? ((await response.clone().json()) as Exchanged["received"]) : {};
    this.log.push({ method, sent, status: response.status, received });
    return response;
  }
}

function describeCombinedError(operation: string, error: CombinedError): Error {
  if (error.graphQLErrors.length > 0) {
    return new GraphQLResponseError(
      operation,
      error.graphQLErrors.map((e) => ({ message: e.message, extensions: e.extensions })),
    );
  }
  return new Error(`${operation}: ${error.message}`, { cause: error.networkError });
}

/** The `extensions.code` of a response's first error, if it has one. */
export function codeOf(received: Exchanged["received"]): unknown {
  return received.errors?.[0]?.extensions?.["code"];
}
