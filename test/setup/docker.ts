// Whether testcontainers can reach a container runtime; asked once, briefly.
let answer: Promise<boolean> | undefined;

export function dockerAvailable(): Promise<boolean> {
  answer ??= (async () => {
    try {
      const { getContainerRuntimeClient } = await import("testcontainers");
      const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("timeout")), 5000).unref());
      await Promise.race([getContainerRuntimeClient(), timeout]);
      return true;
    } catch {
      return false;
    }
  })();
  return answer;
}
