// What a streaming session runs once a connection has upgraded: SPDY and WebSocket framing (and
// the `ws` package), exec, attach and port forwarding. server.ts requires this module on the first
// upgrade only, so a daemon that never streams does not hold it.
export { WebSocketServer } from 'ws';
export { SpdyConnection } from './spdy-conn';
export { serveSpdyExec, serveSpdyPortForward } from './spdy-session';
export { serveWsExec, serveWsPortForward } from './ws-session';
export { runExec } from './exec';
export { runAttach } from './attach';
