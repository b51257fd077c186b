export * from './backend/constants.js';
export type * from './backend/types.js';
export * from './soft/index.js';
