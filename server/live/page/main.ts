// The /live page's script (bundled by esbuild, bundle.ts): the total and one
// customer's order count, live through orders.watchCount, and a form that
// adds an order, all through the typed client. A count reads as a number of
// orders; the form's answer stays only while it applies (a later answer
// replaces it, and an error goes as soon as the form is changed).
import { createClient } from "../../../client/index.ts";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const connection = $<HTMLParagraphElement>("connection");
const watchForm = $<HTMLFormElement>("watch");
const addForm = $<HTMLFormElement>("add");
const addButton = addForm.querySelector("button") as HTMLButtonElement;
const addStatus = $<HTMLParagraphElement>("add-status");

const client = createClient({ url: location.origin });

/** Where a count is shown: its number and its unit. */
interface Figure {
  number: HTMLElement;
  unit: HTMLElement;
}
const total: Figure = { number: $("total"), unit: $("total-unit") };
const customer: Figure = { number: $("customer-count"), unit: $("customer-unit") };

function showCount(figure: Figure, count: number | undefined) {
  if (count === undefined) {
    figure.number.textContent = "—";
    figure.unit.textContent = "unavailable";
    delete figure.number.dataset.count;
    return;
  }
  figure.number.textContent = count.toLocaleString("en-US");
  figure.unit.textContent = count === 1 ? "order" : "orders";
  figure.number.dataset.count = String(count);
}

/** Live: the stream is open; connecting: it is being (re)opened, e.g. after a server restart. */
function showConnection(state: "live" | "connecting" | "failed", detail?: string) {
  connection.dataset.state = state;
  connection.textContent =
    state === "live" ? "Live" : state === "connecting" ? "Connecting…" : `Not live: ${detail ?? "unknown error"}`;
}

function watch(customerId: number | undefined, figure: Figure) {
  return client.orders.watchCount.subscribe(customerId === undefined ? undefined : { customerId }, {
    onData: ({ data }) => showCount(figure, data.count),
    onConnectionStateChange: (state) => {
      if (customerId === undefined) showConnection(state.state === "pending" ? "live" : "connecting");
    },
    onError: (error) => {
      showCount(figure, undefined);
      showConnection("failed", error.message);
    },
  });
}

/** The form's answer: "busy" while sending, "ok" or "error" after; none hides it. */
function showStatus(kind?: "busy" | "ok" | "error", text = "") {
  addStatus.hidden = kind === undefined;
  addStatus.textContent = text;
  if (kind === undefined) delete addStatus.dataset.kind;
  else addStatus.dataset.kind = kind;
}

/** An error was about the form as it was: once it changes, it no longer applies. */
function clearError() {
  if (addStatus.dataset.kind === "error") showStatus();
}

watch(undefined, total);
let watching: { unsubscribe(): void } | undefined;

watchForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const id = Number(new FormData(watchForm).get("customerId"));
  watching?.unsubscribe();
  customer.number.textContent = "…";
  customer.unit.textContent = "";
  delete customer.number.dataset.count;
  $("customer-label").textContent = `Customer ${id}`;
  $("customer-label").hidden = false;
  $("customer-figure").hidden = false;
  $("customer-empty").hidden = true;
  watching = watch(id, customer);
  // Orders added below go to the customer being watched, unless changed.
  const addCustomer = $<HTMLInputElement>("add-customer");
  if (addCustomer.value !== String(id)) {
    addCustomer.value = String(id);
    clearError();
  }
});

addForm.addEventListener("input", clearError);

addForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(addForm);
  const token = String(form.get("token") ?? "");
  const writer = token ? createClient({ url: location.origin, token }) : client;
  const date = String(form.get("orderDate") ?? "");
  showStatus("busy", "Adding…");
  addButton.disabled = true;
  try {
    const order = await writer.orders.add.mutate({
      customerId: Number(form.get("customerId")),
      netAmount: String(form.get("netAmount")),
      tax: String(form.get("tax")),
      ...(date ? { orderDate: date } : {}),
    });
    showStatus("ok", `Added order ${order.orderId} for customer ${order.customerId}: ${order.totalAmount}.`);
  } catch (error) {
    showStatus("error", `Not added: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    addButton.disabled = false;
  }
});
