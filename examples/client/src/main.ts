// Registers a fresh user, creates a room, subscribes to it over graphql-ws, sends a message over
// HTTP and checks that the subscription delivers it. Prints one line and exits 0, or says what
// failed and exits 1 (also after 15 s without an end).
//
//   npm start -- http://127.0.0.1:8000/graphql
import { randomBytes, randomUUID } from "node:crypto";
import { CreateRoom, Me, MessageAdded, Register, SendMessage } from "./operations.js";
import { connect, request, requestOverSocket, subscribe } from "./sdk.js";

const TIMEOUT_MS = 15_000;

function check(condition: boolean, what: string): asserts condition {
  if (!condition) {
    throw new Error(`check failed: ${what}`);
  }
}

async function run(url: string): Promise<string> {
  const started = performance.now();
  const suffix = randomBytes(5).toString("hex");
  const username = `ts_client_${suffix}`;

  // 1. A fresh account (signed in: register returns the tokens).
  const { register } = await request(url, Register, {
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
  const { createRoom: room } = await request(
    url,
    CreateRoom,
    { input: { name: `typed client ${suffix}`, isPrivate: true } },
    token,
  );

  // 3. The subscription, over a socket signed in with the access token.
  const client = connect(url, token);
  try {
    const messages = subscribe(client, MessageAdded, { roomId: room.id });

    // 4. The protocol does not acknowledge `subscribe`, but the server reads nothing more from
    // a socket until its new subscription is established. So the answer to an operation sent
    // after it on the same socket means the subscription is live (and that the token in
    // `connection_init` signed the socket in as this user).
    const { me } = await requestOverSocket(client, Me, {});
    check(me.id === user.id, `the socket is signed in as ${user.username}, not ${me.username}`);

    // 5. A message over HTTP, received on the subscription.
    const body = `hello from the typed client ${suffix}`;
    const clientMsgId = randomUUID();
    const sentAt = performance.now();
    const { sendMessage: sent } = await request(
      url,
      SendMessage,
      { input: { roomId: room.id, body, clientMsgId } },
      token,
    );
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

    const ms = (from: number, to: number) => `${Math.round(to - from)} ms`;
    return (
      `ok: ${user.username} created room "${room.name}", subscribed to messageAdded over graphql-ws, ` +
      `sent message #${message.seq} over HTTP and received it ${ms(sentAt, receivedAt)} later ` +
      `(by ${message.author.username} at ${message.createdAt}; ${ms(started, receivedAt)} in all)`
    );
  } finally {
    await client.dispose();
  }
}

/** An error's message, with its cause's (`fetch failed` alone does not say why). */
function describe(error: unknown): string {
  if (!(error instanceof Error)) {
    return String(error);
  }
  return error.cause === undefined ? error.message : `${error.message}: ${describe(error.cause)}`;
}

const url = process.argv[2] ?? process.env["CHAT_SERVER_URL"] ?? "http://127.0.0.1:8000/graphql";
const timeout = setTimeout(() => {
  console.error(`client: FAILED: no end after ${TIMEOUT_MS / 1000} s (server ${url})`);
  process.exit(1);
}, TIMEOUT_MS);

run(url).then(
  (summary) => {
    clearTimeout(timeout);
    console.log(`client: ${summary}`);
    process.exit(0);
  },
  (error: unknown) => {
    clearTimeout(timeout);
    console.error(`client: FAILED against ${url}: ${describe(error)}`);
    process.exit(1);
  },
);
