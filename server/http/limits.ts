// The batch limit is part of the API the client obeys, so it is stated with the client's rules.
export { maxBatchSize } from "../../client/rules.ts";
