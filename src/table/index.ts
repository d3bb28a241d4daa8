export * from './layout.js';
export * from './buffers.js';
export * from './view.js';
export * from './commit.js';
export * from './node-table.js';
export * from './summary.js';
