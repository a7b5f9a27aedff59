// Money's rules live with the client's input rules (client/money.ts), which the
// CLI checks before it sends; the server's modules import them from here.
export { formatCents, maxCents, parseCents } from "../client/money.ts";
