// The operations this client sends. `npm run codegen` reads every `graphql(...)` call in src/
// and generates, in src/generated/, a typed document for each: its result and variables types
// come from schema.graphql, so a field the schema does not have, or a variable of the wrong
// type, fails `npm run typecheck`.
import { graphql } from "./generated/index.js";

export const Register = graphql(`
  mutation Register($input: RegisterInput!) {
    register(input: $input) {
      accessToken
      tokenType
      expiresIn
      user {
        id
        username
      }
    }
  }
`);

export const CreateRoom = graphql(`
  mutation CreateRoom($input: CreateRoomInput!) {
    createRoom(input: $input) {
      id
      name
      isPrivate
    }
  }
`);

export const SendMessage = graphql(`
  mutation SendMessage($input: SendMessageInput!) {
    sendMessage(input: $input) {
      id
      seq
    }
  }
`);

export const Me = graphql(`
  query Me {
    me {
      id
      username
    }
  }
`);

export const MessageAdded = graphql(`
  subscription MessageAdded($roomId: ID!) {
    messageAdded(roomId: $roomId) {
      id
      roomId
      seq
      body
      clientMsgId
      createdAt
      cursor
      author {
        id
        username
      }
    }
  }
`);
