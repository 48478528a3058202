// express-password-guard/testing: what a store author runs in their own tests.
export { storeContract } from './store-contract';
export type { StoreContractOptions, TestFramework } from './store-contract';
