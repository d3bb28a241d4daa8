export {
  BALANCER_LISTEN_ENV,
  Balancer,
  DEFAULT_BALANCER_LISTEN,
  STATIC_SERVICE,
  nodeFrontEnd,
  parseStaticEndpoints,
} from './balancer.js';
export type { BalancerOptions, FeedSource, FrontEndFactory } from './balancer.js';
export type { Downstream, DownstreamSink, FrontEnd } from './downstream.js';
export type { UpgradeDownstream } from './websocket.js';
export { proxyUpgrade } from './websocket.js';
export { Proxy, sendError } from './proxy.js';
export { FEED_EVENT_TYPES, MasterFeed, RemoteFeed } from './feed.js';
export { ClusterModel } from './model.js';
export { EndpointRegistry, EndpointTable, SlotState } from './endpoints.js';
export type { EndpointSpec } from './endpoints.js';
export { FULL_SCAN_MAX, pick } from './picker.js';
export { OUTLIER_DEFAULTS } from './outlier.js';
export { REQUEST_LIMIT_DEFAULTS, VIA_VALUE } from './headers.js';
export { RouteTable } from './routes.js';
export { TIMEOUT_DEFAULTS } from './upstream.js';
export { ERROR_KINDS, REFUSAL_KINDS } from './types.js';
export type * from './types.js';
export { chooseFrontEnd, uwsFrontEnd } from './front-choice.js';
export type { FrontEndChoice } from './front-choice.js';
export { UwsFront } from './front-uws.js';
export type { UwsFrontOptions } from './front-uws.js';
export { MAX_THREADS, ThreadedBalancer } from './threads.js';
export type { ThreadedBalancerOptions } from './threads.js';
