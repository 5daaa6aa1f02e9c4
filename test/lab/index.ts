// The test lab: a real registry, test images and tar building, for integration tests.
export * from './registry';
export * from './tar';
export * from './images';
export * from './client';
