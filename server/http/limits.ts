/** tRPC batches larger than this are refused: one request must not fan out into unbounded work. The client splits its batches to fit. */
export const maxBatchSize = 20;
