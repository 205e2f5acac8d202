// Traverse as a library: the package's entry point. An app joins the coordination server as a
// client node and opens encrypted streams to an agent (connect), or joins as the agent and
// serves them (serve). Streams are Node Duplexes carried directly peer to peer when a hole punch
// succeeds, through the relay until then. Everything else in src/ is internal.
//
//   const conn = await connect('dev-box', { server: 'http://coord.example:8080', token });
//   const db = await conn.openStream('127.0.0.1:5432');
//
// The implementation lives in src/node/app-api.ts; this file only chooses what is public.
export { connect, serve, TraverseError } from './node/app-api.js';
export type {
  Agent,
  AgentEvents,
  Connection,
  ConnectionEvents,
  ConnectOptions,
  NodeOptions,
  Peer,
  Pong,
  ServeOptions,
  StreamFilter,
  StreamHandler,
  StreamRequest,
  TraverseErrorCode,
} from './node/app-api.js';
export type { Path } from './net/path.js';
