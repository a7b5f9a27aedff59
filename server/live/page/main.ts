// The /live page's script (bundled by esbuild, bundle.ts): the total and one
// customer's order count, live through orders.watchCount, and a form that
// adds an order, all through the typed client.
import { createClient } from "../../../client/index.ts";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const total = $<HTMLOutputElement>("total");
const customerCount = $<HTMLOutputElement>("customer-count");
const customerLabel = $<HTMLSpanElement>("customer-label");
const connection = $<HTMLParagraphElement>("connection");
const watchForm = $<HTMLFormElement>("watch");
const addForm = $<HTMLFormElement>("add");
const addStatus = $<HTMLParagraphElement>("add-status");

const client = createClient({ url: location.origin });
const format = (count: number) => count.toLocaleString("en-US");

/** Live: the stream is open; connecting: it is being (re)opened, e.g. after a server restart. */
function showConnection(state: "live" | "connecting" | "failed", detail?: string) {
  connection.dataset.state = state;
  connection.textContent =
    state === "live" ? "Live." : state === "connecting" ? "Connecting…" : `Not live: ${detail ?? "unknown error"}`;
}

function watch(customerId: number | undefined, into: HTMLOutputElement) {
  return client.orders.watchCount.subscribe(customerId === undefined ? undefined : { customerId }, {
    onData: ({ data }) => {
      into.value = format(data.count);
      into.dataset.count = String(data.count);
    },
    onConnectionStateChange: (state) => {
      if (customerId === undefined) showConnection(state.state === "pending" ? "live" : "connecting");
    },
    onError: (error) => {
      into.value = "unavailable";
      delete into.dataset.count;
      showConnection("failed", error.message);
    },
  });
}

watch(undefined, total);
let customer: { unsubscribe(): void } | undefined;

watchForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const id = Number(new FormData(watchForm).get("customerId"));
  customer?.unsubscribe();
  customerCount.value = "…";
  delete customerCount.dataset.count;
  customerLabel.textContent = `Customer ${id}`;
  customer = watch(id, customerCount);
  // Orders added below go to the customer being watched, unless changed.
  $<HTMLInputElement>("add-customer").value = String(id);
});

addForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(addForm);
  const token = String(form.get("token") ?? "");
  const writer = token ? createClient({ url: location.origin, token }) : client;
  const date = String(form.get("orderDate") ?? "");
  addStatus.textContent = "Adding…";
  try {
    const order = await writer.orders.add.mutate({
      customerId: Number(form.get("customerId")),
      netAmount: String(form.get("netAmount")),
      tax: String(form.get("tax")),
      ...(date ? { orderDate: date } : {}),
    });
    addStatus.textContent = `Added order ${order.orderId} for customer ${order.customerId}: ${order.totalAmount}.`;
  } catch (error) {
    addStatus.textContent = `Not added: ${error instanceof Error ? error.message : String(error)}`;
  }
});
