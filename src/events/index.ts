export { DEFAULT_EVENT_CAPACITY, EventBus } from './bus.js';
export type { EventBusOptions, EventInput, EventListener } from './bus.js';
export { EventStream, STREAM_DEFAULTS, Subscription } from './stream.js';
export type { EventStreamOptions, StreamSink } from './stream.js';
export { isUnfiltered, matches, parseStreamQuery } from './query.js';
export type { EventFilter, StreamRequest } from './query.js';
