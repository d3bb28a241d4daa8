import { AgentCloseCode, type AgentConnection } from '../master/index.js';
import type { WsSocket } from '../transport/index.js';

/**
 * A transport WebSocket as the master's AgentConnection. The protocol is binary protobuf; a text frame is a
 * client that does not speak it, so the socket is closed with PROTOCOL_ERROR rather than handed a frame the
 * master would have to guess about.
 */
export function agentConnectionOf(socket: WsSocket): AgentConnection {
  return {
    remoteAddress: socket.remoteAddress,
    send: (bytes) => socket.send(bytes),
    close: (code, reason) => socket.close(code, reason),
    onMessage: (cb) =>
      socket.onMessage((bytes, isBinary) => {
        if (isBinary) cb(bytes);
        else socket.close(AgentCloseCode.PROTOCOL_ERROR, 'text frames are not part of borealis.agent.v1 (binary protobuf)');
      }),
    onClose: (cb) => socket.onClose(() => cb()),
  };
}
