export * from './backend/constants.js';
export type * from './backend/types.js';
