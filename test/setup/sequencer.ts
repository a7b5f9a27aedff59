// Starts the files test/setup/schedule.ts names in its order, then the rest in
// Vitest's (which, without a previous run's durations, as on a fresh clone,
// would start the largest files first, not the longest).
import { relative } from "node:path";
import { BaseSequencer, type TestSpecification } from "vitest/node";
import { startOrder } from "./schedule.ts";

const rank = new Map<string, number>(startOrder.map((file, index) => [file, index]));

export class ScheduledSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const byVitest = await super.sort(files);
    const rankOf = (spec: TestSpecification) =>
      rank.get(relative(spec.project.config.root, spec.moduleId)) ?? startOrder.length;
    // Array.prototype.sort is stable: the unnamed files keep Vitest's order.
    return byVitest.sort((a, b) => rankOf(a) - rankOf(b));
  }
}
