// What every answer obeys, decided here and nowhere else: a Host this server
// doesn't serve gets 421; a known path with a method it doesn't serve gets
// 405 with Allow, before any body or content-type check; a write whose body
// isn't JSON gets 415 (a cross-site form can't write); every 503 and 504
// carries Retry-After. Refusals on tRPC's paths are in tRPC's error shape,
// made by tRPC itself (its public resolveResponse, given the error), the
// others are FastAPI's {"detail"}.
import { type TRPC_ERROR_CODE_KEY, TRPCError } from "@trpc/server";
import { resolveResponse } from "@trpc/server/http";
import type { FastifyReply, FastifyRequest } from "fastify";
import { methodsOf, type ProcedureDoc } from "../routers/documented.ts";
import type { Context } from "../trpc.ts";

/** How long a client should wait before trying again after a 503 or a 504 (a write resent with its idempotency key). */
export const retryAfterSeconds = 1;

export const trpcPrefix = "/trpc/";

const writeMethods = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const restMethods = ["GET", "HEAD", "POST"] as const;

/** tRPC's error code for each status a refusal may have; a status without one (421) is answered as {"detail"}. */
const trpcCodes: Partial<Record<number, TRPC_ERROR_CODE_KEY>> = {
  400: "BAD_REQUEST",
  405: "METHOD_NOT_SUPPORTED",
  413: "PAYLOAD_TOO_LARGE",
  415: "UNSUPPORTED_MEDIA_TYPE",
  422: "BAD_REQUEST",
  500: "INTERNAL_SERVER_ERROR",
};

export interface ProtocolOptions {
  router: Parameters<typeof resolveResponse>[0]["router"];
  procedures: ReadonlyMap<string, ProcedureDoc>;
  createContext: (req: FastifyRequest) => Context;
  hostAllowed: (host: string | undefined) => boolean;
  /** Whether a REST route answers this path and method (Fastify's hasRoute). */
  hasRoute: (path: string, method: string) => boolean;
}

export class Protocol {
  constructor(private readonly options: ProtocolOptions) {}

  /**
   * The onRequest check: undefined when the request may go on (decided at
   * once: most requests wait for nothing here), else the refusal being sent.
   */
  check(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> | undefined {
    if (!this.options.hostAllowed(req.headers.host)) {
      // Not a request for this server at all: no API's shape applies (tRPC has no 421).
      return this.refuse(
        req,
        reply,
        421,
        "Misdirected Request: this Host is not served here; list it in ALLOWED_HOSTS",
      );
    }
    const allowed = this.allowedMethods(req);
    if (allowed && !allowed.includes(req.method)) {
      return this.refuse(req, reply, 405, "Method Not Allowed", { allow: allowed.join(", ") });
    }
    if (req.is404 && !isTrpcPath(pathOf(req))) return undefined; // 404 is the not-found handler's
    if (writeMethods.has(req.method) && !isJson(req.headers["content-type"])) {
      return this.refuse(req, reply, 415, "Unsupported Media Type: send the body as application/json");
    }
    return undefined;
  }

  /** A refusal in the shape of the path's API. */
  async refuse(
    req: FastifyRequest,
    reply: FastifyReply,
    status: number,
    detail: string,
    headers: Record<string, string> = {},
  ): Promise<FastifyReply> {
    reply.headers(headers);
    const code = trpcCodes[status];
    if (!isTrpcPath(pathOf(req)) || code === undefined) return reply.code(status).send({ detail });
    return reply.send(await this.trpcError(req, new TRPCError({ code, message: detail })));
  }

  /**
   * tRPC's own answer to this request failing with `error`: its error shape,
   * status and batch form, from the path alone (the body and query are left
   * unread, as they may be what is refused).
   */
  private trpcError(req: FastifyRequest, error: TRPCError): Promise<Response> {
    const url = new URL(req.url, "http://localhost");
    const bare = new URL(url.pathname, url);
    if (url.searchParams.has("batch")) bare.searchParams.set("batch", url.searchParams.get("batch") ?? "");
    return resolveResponse({
      router: this.options.router,
      req: new Request(bare, { method: "GET" }),
      path: bare.pathname.slice(trpcPrefix.length),
      error,
      createContext: async () => this.options.createContext(req),
    });
  }

  /** The methods this path answers, or undefined if it answers this one (or is unknown: 404 is Fastify's). */
  private allowedMethods(req: FastifyRequest): readonly string[] | undefined {
    const path = pathOf(req);
    if (isTrpcPath(path)) {
      let allowed: readonly string[] = ["GET", "HEAD", "POST"];
      for (const name of decoded(path.slice(trpcPrefix.length)).split(",")) {
        const doc = this.options.procedures.get(name);
        if (!doc) return undefined; // tRPC says NOT_FOUND
        const methods = methodsOf(doc.kind);
        allowed = allowed.filter((method) => methods.includes(method));
      }
      // A batch mixing queries and mutations allows no method: tRPC says what is wrong with it.
      return allowed.length > 0 ? allowed : undefined;
    }
    if (!req.is404) return undefined;
    const allowed = restMethods.filter((method) => this.options.hasRoute(path, method));
    return allowed.length > 0 ? allowed : undefined;
  }
}

/** Headers every answer gets by its status, whoever makes it (Fastify, tRPC, the listener). */
export function headersForStatus(status: number): Record<string, string> | undefined {
  return status === 503 || status === 504 ? { "retry-after": String(retryAfterSeconds) } : undefined;
}

export function isTrpcPath(path: string): boolean {
  return path.startsWith(trpcPrefix);
}

export function pathOf(req: FastifyRequest): string {
  return req.url.split("?", 1)[0] ?? "/";
}

function decoded(component: string): string {
  try {
    return decodeURIComponent(component);
  } catch {
    return component; // tRPC reports it
  }
}

function isJson(contentType: string | undefined): boolean {
  const media = contentType?.split(";", 1)[0]?.trim().toLowerCase();
  return media === "application/json";
}
