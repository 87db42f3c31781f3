// Registers a fresh user, creates a room, subscribes to it over graphql-ws, sends a message over
// HTTP and checks that the subscription delivers it, sending every document one of two ways:
//
// - `--persisted=apq` (the default): the HTTP operations go through urql with its
//   `persistedExchange` (Apollo's automatic persisted queries), and the script checks, by the
//   requests urql made, that each was first sent by hash alone, missed and was retried with
//   its text, and that `me`, run again, was served by hash alone over GET. With
//   `--fresh-server` (a server that has seen none of these documents, as
//   examples/with-server.sh starts) a first request that hits is a failure.
// - `--persisted=allow-list`: every document goes by the hash codegen put in it, never its
//   text (`documentId` over HTTP, `extensions.persistedQuery` over the socket), for a server
//   started with codegen's manifest as its allow-list (PERSISTED_OPERATIONS_FILE); and a
//   document not on it, `{ __typename }`, is refused over POST, GET and the socket.
//
// Prints what it did and exits 0, or says what failed and exits 1 (also after 15 s without an
// end).
//
//   npm start -- http://127.0.0.1:8000/graphql [--persisted=apq|allow-list] [--fresh-server]
import { randomBytes, randomUUID } from "node:crypto";
import type { GraphQLFormattedError } from "graphql";
import type { Client } from "graphql-ws";
import { ApqClient, codeOf, sha256Hex, type Exchanged } from "./apq.js";
import type { TypedDocumentString } from "./generated/graphql.js";
import { CreateRoom, Me, MessageAdded, Register, SendMessage } from "./operations.js";
import {
  connect,
  errorsOverSocket,
  get,
  post,
  request,
  requestOverSocket,
  subscribe,
  type RawResponse,
  type SendBy,
} from "./sdk.js";

const TIMEOUT_MS = 15_000;
const NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND";

type Mode = "apq" | "allow-list";
type Variables = Record<string, unknown>;

function check(condition: boolean, what: string): asserts condition {
  if (!condition) {
    throw new Error(`check failed: ${what}`);
  }
}

/** How the script sends its queries and mutations over HTTP. */
interface Http {
  run<TResult, TVariables extends Variables>(
    document: TypedDocumentString<TResult, TVariables>,
    variables: TVariables,
    token?: string,
  ): Promise<TResult>;
}

/** The requests urql made for one operation. */
interface Round {
  operation: string;
  requests: Exchanged[];
}

/** urql with `persistedExchange`, each operation's requests kept for `checkApq`. */
function apqHttp(url: string, rounds: Round[]): Http {
  const client = new ApqClient(url);
  return {
    async run(document, variables, token) {
      const from = client.log.length;
      client.token = token;
      const operation = /\b(?:query|mutation)\s+(\w+)/.exec(document.toString())?.[1] ?? "?";
      try {
        return await client.run(document, variables);
      } finally {
        rounds.push({ operation, requests: client.log.slice(from) });
      }
    },
  };
}

/** `fetch`, each document named by its hash alone (`documentId`). */
function hashHttp(url: string): Http {
  return {
    run: (document, variables, token) => request(url, document, variables, { token, by: "hash" }),
  };
}

async function run(url: string, mode: Mode, freshServer: boolean): Promise<string[]> {
  const started = performance.now();
  const suffix = randomBytes(5).toString("hex");
  const username = `ts_client_${suffix}`;
  const rounds: Round[] = [];
  const http = mode === "apq" ? apqHttp(url, rounds) : hashHttp(url);
  // Over the socket: the text under APQ (urql covers HTTP), the hash under an allow-list.
  const socketBy: SendBy = mode === "apq" ? "text" : "hash";

  // 1. A fresh account (signed in: register returns the tokens).
  const { register } = await http.run(Register, {
    input: {
      username,
      email: `${username}@example.com`,
      password: randomBytes(18).toString("base64url"),
    },
  });
  check(register.tokenType === "Bearer", `tokenType is "Bearer", not ${register.tokenType}`);
  const token = register.accessToken;
  const user = register.user;

  // 2. A room of its own; its creator is a member.
  const { createRoom: room } = await http.run(
    CreateRoom,
    { input: { name: `typed client ${suffix}`, isPrivate: true } },
    token,
  );

  // 3. The subscription, over a socket signed in with the access token.
  const client = connect(url, token);
  try {
    const messages = subscribe(client, MessageAdded, { roomId: room.id }, socketBy);

    // 4. The protocol does not acknowledge `subscribe`, but the server reads nothing more from
    // a socket until its new subscription is established. So the answer to an operation sent
    // after it on the same socket means the subscription is live (and that the token in
    // `connection_init` signed the socket in as this user).
    const { me } = await requestOverSocket(client, Me, {}, socketBy);
    check(me.id === user.id, `the socket is signed in as ${user.username}, not ${me.username}`);

    // The same query over HTTP (under APQ, a GET by hash), and again (under APQ, the hash alone
    // now finds it).
    for (let i = 0; i < (mode === "apq" ? 2 : 1); i++) {
      const { me: meOverHttp } = await http.run(Me, {}, token);
      check(meOverHttp.id === user.id, `me over HTTP is ${user.username}, not ${meOverHttp.username}`);
    }

    // 5. A message over HTTP, received on the subscription.
    const body = `hello from the typed client ${suffix}`;
    const clientMsgId = randomUUID();
    const sentAt = performance.now();
    const { sendMessage: sent } = await http.run(SendMessage, { input: { roomId: room.id, body, clientMsgId } }, token);
    const next = await messages.next();
    const receivedAt = performance.now();
    check(next.done !== true, "messageAdded ended before delivering the message");
    const message = next.value.messageAdded;
    check(message.id === sent.id, `the message received is the one sent (${sent.id}), not ${message.id}`);
    check(message.roomId === room.id, `the message is in room ${room.id}, not ${message.roomId}`);
    check(message.body === body, `the body is ${JSON.stringify(body)}, not ${JSON.stringify(message.body)}`);
    check(message.author.id === user.id, `the author is ${user.username}, not ${message.author.username}`);
    check(message.clientMsgId === clientMsgId, "the clientMsgId came back");
    await messages.return();

    const persisted = mode === "apq" ? checkApq(rounds, freshServer) : await checkAllowList(url, client, token);
    const ms = (from: number, to: number) => `${Math.round(to - from)} ms`;
    return [
      `ok (${mode}): ${user.username} created room "${room.name}", subscribed to messageAdded over graphql-ws, ` +
        `sent message #${message.seq} over HTTP and received it ${ms(sentAt, receivedAt)} later ` +
        `(by ${message.author.username} at ${message.createdAt}; ${ms(started, performance.now())} in all)`,
      ...persisted,
    ];
  } finally {
    await client.dispose();
  }
}

/**
 * Checks, by the requests urql made, that it spoke APQ with the server: each operation's first
 * request carried the hash alone (GET for a query, POST for a mutation); a miss was answered
 * 200 `PersistedQueryNotFound` and followed by the same hash with the text, whose sha256 it
 * is, which ran; and an operation run again (`me`) ran by hash alone.
 */
function checkApq(rounds: readonly Round[], freshServer: boolean): string[] {
  const lines: string[] = [];
  const outcomes: string[] = [];
  check(rounds.filter((round) => round.operation === "Me").length === 2, "me ran twice over HTTP");
  rounds.forEach((round, index) => {
    const { operation, requests } = round;
    const again = rounds.slice(0, index).some((earlier) => earlier.operation === operation);
    const method = operation === "Me" ? "GET" : "POST";
    const at = (i: number) => `${operation}, request ${i + 1} of ${requests.length}`;
    check(requests.length === 1 || requests.length === 2, `${operation}: 1 or 2 requests, not ${requests.length}`);
    requests.forEach((r, i) => {
      check(r.method === method, `${at(i)}: ${method}, not ${r.method}`);
      check(r.sent.operationName === operation, `${at(i)}: operationName ${operation}`);
    });
    const [first, retry] = requests as [Exchanged, Exchanged | undefined];
    const hash = first.sent.extensions?.persistedQuery?.sha256Hash ?? "";
    check(/^[0-9a-f]{64}$/.test(hash), `${at(0)}: extensions.persistedQuery.sha256Hash is a sha256`);
    check(first.sent.query === undefined, `${at(0)}: the hash alone, no query`);
    if (retry === undefined) {
      check(!freshServer || again, `${at(0)}: a fresh server cannot hold ${operation}'s document, yet it ran`);
      check(
        first.status === 200 && first.received.errors === undefined,
        `${at(0)}: ran (HTTP ${first.status}, ${JSON.stringify(first.received.errors)})`,
      );
      outcomes.push(`${operation}: ${method} hash → data`);
      return;
    }
    check(!again, `${operation} again: served by hash alone, not missed (${JSON.stringify(first.received)})`);
    check(first.status === 200, `${at(0)}: a miss is answered 200, not ${first.status}`);
    check(codeOf(first.received) === NOT_FOUND, `${at(0)}: ${NOT_FOUND}, not ${JSON.stringify(first.received)}`);
    check(first.received.errors?.[0]?.message === "PersistedQueryNotFound", `${at(0)}: message PersistedQueryNotFound`);
    check(first.received.data === undefined, `${at(0)}: no data on a miss`);
    check(retry.sent.query !== undefined, `${at(1)}: the retry carries the text`);
    check(retry.sent.extensions?.persistedQuery?.sha256Hash === hash, `${at(1)}: the retry carries the same hash`);
    check(sha256Hex(retry.sent.query ?? "") === hash, `${at(1)}: the hash is the sha256 of the text sent`);
    check(
      retry.status === 200 && retry.received.errors === undefined,
      `${at(1)}: ran (HTTP ${retry.status}, ${JSON.stringify(retry.received.errors)})`,
    );
    outcomes.push(`${operation}: ${method} hash → ${NOT_FOUND}, ${method} hash+text → data`);
  });
  const requests = rounds.flatMap((round) => round.requests);
  const count = (method: string) => requests.filter((r) => r.method === method).length;
  lines.push(
    `apq (urql persistedExchange): ${rounds.length} operations in ${requests.length} requests ` +
      `(${count("GET")} GET, ${count("POST")} POST): ${outcomes.join("; ")}`,
  );
  return lines;
}

/** The `extensions.code`s of a response's errors. */
function codes(errors: readonly GraphQLFormattedError[] | undefined): unknown[] {
  return (errors ?? []).map((error) => error.extensions?.["code"]);
}

function refused(how: string, answer: RawResponse): string {
  check(answer.status === 200, `${how}: answered 200 (as a miss is), not ${answer.status}`);
  const got = codes(answer.result?.errors);
  check(
    got.length === 1 && got[0] === NOT_FOUND,
    `${how}: refused with ${NOT_FOUND}, not ${JSON.stringify(answer.result)}`,
  );
  check(answer.result?.data === undefined, `${how}: no data`);
  return how;
}

/**
 * Under an allow-list every operation above went by hash alone (the server holds only the
 * manifest's text, which is not the text in the generated documents, so a document sent
 * whole would not have run). Here: what is not on the list is refused, on every transport.
 */
async function checkAllowList(url: string, client: Client, token: string): Promise<string[]> {
  const text = "{ __typename }";
  const done = [
    refused(`POST ${text}`, await post(url, { query: text }, token)),
    refused(`GET ?query=${text}`, await get(url, { query: text })),
    refused(`POST documentId of ${text}`, await post(url, { documentId: `sha256:${sha256Hex(text)}` }, token)),
  ];
  const overSocket = codes(await errorsOverSocket(client, text));
  check(
    overSocket.length === 1 && overSocket[0] === NOT_FOUND,
    `socket ${text}: refused with ${NOT_FOUND}, not ${JSON.stringify(overSocket)}`,
  );
  done.push(`graphql-ws subscribe ${text}`);
  return [
    `allow-list: register, createRoom, me, sendMessage (documentId over POST) and messageAdded, me ` +
      `(extensions.persistedQuery over graphql-ws) ran by hash alone; ${done.join(", ")}: ${NOT_FOUND}`,
  ];
}

/** An error's message, with its cause's (`fetch failed` alone does not say why). */
function describe(error: unknown): string {
  if (!(error instanceof Error)) {
    return String(error);
  }
  return error.cause === undefined ? error.message : `${error.message}: ${describe(error.cause)}`;
}

function usage(message: string): never {
  console.error(`client: ${message}`);
  console.error("usage: npm start -- GRAPHQL_URL [--persisted=apq|allow-list] [--fresh-server]");
  process.exit(2);
}

let mode: Mode = "apq";
let freshServer = false;
const positional: string[] = [];
for (const arg of process.argv.slice(2)) {
  if (arg === "--persisted=apq" || arg === "--persisted=allow-list") {
    mode = arg.slice("--persisted=".length) as Mode;
  } else if (arg === "--fresh-server") {
    freshServer = true;
  } else if (arg.startsWith("-")) {
    usage(`unknown option ${arg}`);
  } else {
    positional.push(arg);
  }
}
if (positional.length > 1) {
  usage(`one URL, not ${positional.join(" ")}`);
}
const url = positional[0] ?? process.env["CHAT_SERVER_URL"] ?? "http://127.0.0.1:8000/graphql";
const timeout = setTimeout(() => {
  console.error(`client: FAILED: no end after ${TIMEOUT_MS / 1000} s (server ${url})`);
  process.exit(1);
}, TIMEOUT_MS);

run(url, mode, freshServer).then(
  (summary) => {
    clearTimeout(timeout);
    for (const line of summary) {
      console.log(`client: ${line}`);
    }
    process.exit(0);
  },
  (error: unknown) => {
    clearTimeout(timeout);
    const message = describe(error);
    const hint =
      mode === "allow-list" && message.includes(NOT_FOUND)
        ? " (is the server's PERSISTED_OPERATIONS_FILE the src/generated/persisted-documents.json of this codegen run?)"
        : "";
    console.error(`client: FAILED against ${url} (--persisted=${mode}): ${message}${hint}`);
    process.exit(1);
  },
);
