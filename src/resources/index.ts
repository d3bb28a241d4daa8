export * from './units.js';
export * from './vector.js';
export * from './ports.js';
export * from './attributes.js';
