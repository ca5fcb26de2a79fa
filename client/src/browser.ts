/** The browser bundle's entry: the client and the WebContainer facade in one module. */
export * from './index';
export * from './webcontainer/index';
